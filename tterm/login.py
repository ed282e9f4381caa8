"""``tterm login <broker>``: a broker's browser login, over SSH, with no browser on this machine.

It drives the adapter's ``login_flow()``: prints the authorize URL to open on any machine, reads
the address the browser was sent to from stdin, and lets the adapter check it and exchange its
code; the new tokens go to the broker's token store in the data dir, where a running tterm or
``tterm hub`` sharing that data dir picks them up. A broker that needs no person (Tradovate,
which logs in with its password and API key and renews its session itself) says so.

Exit status: 0 logged in, or no login needed; 1 the login failed (a pasted address that is not
the expected redirect, a refused code: the message says what, and the tokens held before stay);
2 bad usage (no broker of that name) or a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TextIO

from tterm.config import Settings, data_dir, load_settings
from tterm.core.broker import AuthError, Broker, BrokerError, LoginFlow

log = logging.getLogger(__name__)


def add_login(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "login",
        parents=[common],
        help="log in to a broker that needs a person (browser login; works over SSH)",
        description="Prints the address to open in a browser (on any machine), then reads the address the "
        "browser was sent to after you approved, pasted on stdin. A broker that logs in by itself says so.",
    )
    p.add_argument("broker", metavar="BROKER", help="the broker's name in config.toml ([brokers.<name>])")
    p.set_defaults(handler=cmd_login)


def cmd_login(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, create=False)
    return login(settings, args.broker, stdin=sys.stdin, out=sys.stdout, err=sys.stderr)


def login(settings: Settings, name: str, *, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """The whole command, with its streams passed in (tests and scripts drive it directly)."""
    from tterm.brokers.registry import adapter
    from tterm.runtime import build_broker, build_core

    if name == "paper":
        out.write("paper: the embedded paper broker needs no login.\n")
        return 0
    cfg = settings.brokers.get(name)
    if cfg is None:
        known = ", ".join(sorted(settings.brokers)) or "none"
        err.write(f"tterm: no broker named {name!r} in the config (brokers: {known})\n")
        return 2
    spec = adapter(cfg.type)
    note = spec.login_note or f"{spec.title} logs in by itself with the credentials in secrets.toml."
    if not spec.interactive_login:
        out.write(f"{name}: {note}\nNothing to do.\n")
        return 0
    clock, instruments = build_core(settings)
    broker = build_broker(name, cfg, settings, instruments=instruments, clock=clock, root=data_dir(settings))
    flow = broker.login_flow()
    if flow is None:
        out.write(f"{name}: {note}\nNothing to do.\n")
        return 0
    return asyncio.run(_interactive(name, spec.title, broker, flow, stdin=stdin, out=out, err=err))


async def _interactive(
    name: str, title: str, broker: Broker, flow: LoginFlow, *, stdin: TextIO, out: TextIO, err: TextIO
) -> int:
    try:
        prompt = flow.start()
        out.write(
            f"Log in to {title} ({name}).\n\n"
            "1. Open this address in a web browser, on any machine:\n\n"
            f"   {prompt.url}\n\n"
            f"2. Log in and approve. The browser is then sent to {prompt.redirect_uri}\n"
            "   (that page may fail to load; that is expected).\n"
            "3. Copy the whole address from the browser's address bar, paste it here and press Enter.\n\n"
            "Address: "
        )
        out.flush()
        pasted = await asyncio.to_thread(stdin.readline)
        if not pasted.strip():
            err.write("\ntterm: no address was pasted; nothing changed.\n")
            return 1
        try:
            result = await flow.complete(prompt, pasted)
        except (AuthError, BrokerError) as exc:
            err.write(f"\ntterm: login refused: {exc}\nNothing changed: the tokens held before stay in force.\n")
            return 1
        detail = result.detail or "logged in"
        when = ""
        if result.expires_at and "lasts until" not in detail:  # the OAuth helper's detail already says it
            when = f" It lasts until {result.expires_at:%Y-%m-%d %H:%M %Z}."
        out.write(f"\n{name}: {detail}.{when}\n")
        if result.expires_at:
            out.write(f"tterm warns a day before it ends; then run `tterm login {name}` again.\n")
        return 0
    finally:
        try:
            await broker.close()
        except Exception:  # a broker that was never connected may not close cleanly; say so, go on
            log.warning("closing %s after the login failed", name, exc_info=True)
