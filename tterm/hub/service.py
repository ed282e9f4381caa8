"""The hub as a whole: an engine, the signal router with its store, and the HTTP/WS server.

``tterm hub`` runs :func:`run_hub` (headless, until SIGTERM/SIGINT); the embedded terminal starts
a :class:`Hub` beside its engine when ``[hub] serve_webhooks`` is on. The hub's two secrets are
read from ``[hub]`` in secrets.toml or ``TTERM_HUB_WEBHOOK_SECRET`` / ``TTERM_HUB_API_TOKEN``;
``tterm hub`` creates any that is missing (stored with mode 0600, never printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import secrets as _secrets
import signal as _signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tterm.core.models import Notice
from tterm.hub.routing import SignalRouter, Strategy
from tterm.hub.server import HubServer
from tterm.hub.store import HUB_DB_FILENAME, SignalStore

if TYPE_CHECKING:
    from tterm.config import HubSettings, Settings
    from tterm.core.engine import Engine
    from tterm.datalock import DataDirLock

log = logging.getLogger(__name__)

SECRETS_TABLE = "hub"
WEBHOOK_SECRET_KEY = "webhook_secret"
API_TOKEN_KEY = "api_token"


def hub_secrets() -> tuple[str | None, str | None]:
    """(webhook secret, API token) from secrets.toml ``[hub]`` or the environment."""
    from tterm.config import load_secrets

    found = load_secrets(SECRETS_TABLE)
    return found.get(WEBHOOK_SECRET_KEY) or None, found.get(API_TOKEN_KEY) or None


def hub_token(token_file: Path | None = None) -> str | None:
    """The API token to attach with: the first line of ``token_file``, else TTERM_HUB_API_TOKEN or
    secrets.toml ``[hub] api_token``."""
    if token_file is not None:
        return token_file.expanduser().read_text(encoding="utf-8").strip() or None
    return hub_secrets()[1]


def ensure_hub_secrets(out: TextIO | None = None) -> tuple[str, str]:
    """The hub's secrets, creating any missing one in secrets.toml (mode 0600). Says where, never what."""
    from tterm.config import display_path, save_secret, secrets_path

    webhook, token = hub_secrets()
    for key, value in ((WEBHOOK_SECRET_KEY, webhook), (API_TOKEN_KEY, token)):
        if value:
            continue
        save_secret(SECRETS_TABLE, key, _secrets.token_urlsafe(24))
        if out is not None:
            out.write(f"tterm hub: created {key} in {display_path(secrets_path())} [hub] (mode 0600)\n")
    webhook, token = hub_secrets()
    assert webhook and token
    return webhook, token


class HubBindError(Exception):
    """The hub cannot listen on its address (the port is taken, the address is not this host's)."""


class Hub:
    """Router + store + server around a started engine."""

    def __init__(
        self,
        engine: Engine,
        settings: HubSettings,
        *,
        data_dir: Path | str,
        webhook_secret: str | None,
        api_token: str | None,
        webhooks: bool = True,
        remote: bool = True,
        store: SignalStore | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        path = Path(data_dir) / HUB_DB_FILENAME if str(data_dir) != ":memory:" else ":memory:"
        self.store = store or SignalStore(path)
        # The store's writes commit with the journal's, once a loop pass (write-ahead kept: see store.py).
        self.store.join(engine.journal)
        strategies = {sid: Strategy.from_settings(sid, s) for sid, s in settings.strategies.items()}
        self.router = SignalRouter(
            engine,
            self.store,
            strategies=strategies,
            stale_after=settings.stale_after,
            exit_fill_timeout=settings.exit_fill_timeout,
            drift_grace=settings.drift_grace,
        )
        self.server = HubServer(
            engine,
            self.router,
            settings,
            webhook_secret=webhook_secret,
            api_token=api_token,
            webhooks=webhooks,
            remote=remote,
        )

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Recover unfinished alerts, then serve. The engine must already be started."""
        self._check_accounts()
        await self.router.start()
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()
        await self.router.stop()
        self.store.close()

    @property
    def port(self) -> int | None:
        return self.server.port

    def _check_accounts(self) -> None:
        """Warn (visibly) about strategy accounts the running brokers do not have."""
        known = {a.id for a in self.engine.accounts}
        for sid, strat in self.router.strategies.items():
            for acct in strat.accounts:
                if acct.account not in known:
                    self.engine.ingest(
                        Notice(
                            level="warning",
                            text=(
                                f"hub strategy {sid}: account {acct.account} is not available "
                                f"(accounts: {', '.join(sorted(known)) or 'none'}); its alerts will fail there"
                            ),
                            account=acct.account,
                            source="hub",
                        )
                    )


async def serve_hub(
    settings: Settings,
    *,
    paper_seed: int | None = None,
    host: str | None = None,
    port: int | None = None,
    out: TextIO = sys.stdout,
    stop: asyncio.Event | None = None,
    ready: Callable[[Hub], None] | None = None,
    command: str = "tterm hub",
) -> int:
    """Run the engine and the hub until ``stop`` is set or SIGTERM/SIGINT arrives.

    The hub owns the data dir while it runs (:class:`~tterm.datalock.DataDirLock`; raises
    :class:`~tterm.datalock.DataDirBusy` naming the owner if another process holds it) and
    publishes its remote API address in the lock file, so a plain ``tterm`` or ``tterm flatten``
    on the same dir goes through this hub instead of starting a second engine.
    """
    from tterm.config import data_dir, display_path
    from tterm.datalock import DataDirLock

    root = data_dir(settings)
    lock = DataDirLock(root)
    lock.acquire("hub", command)
    try:
        return await _serve_locked(settings, lock, paper_seed, host, port, out, stop, ready, display_path(root))
    finally:
        lock.release()


def connect_host(host: str) -> str:
    """The address a client on this machine dials for a server bound to ``host`` (a wildcard
    bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _serve_locked(
    settings: Settings,
    lock: DataDirLock,
    paper_seed: int | None,
    host: str | None,
    port: int | None,
    out: TextIO,
    stop: asyncio.Event | None,
    ready: Callable[[Hub], None] | None,
    shown_root: str,
) -> int:
    from tterm.runtime import build_engine

    webhook_secret, api_token = ensure_hub_secrets(out)
    root = lock.root
    engine = build_engine(settings, paper_seed=paper_seed, root=root)
    await engine.start()
    hub = Hub(engine, settings.hub, data_dir=root, webhook_secret=webhook_secret, api_token=api_token)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (_signal.SIGTERM, _signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        try:
            bound = await hub.start(host, port)
        except OSError as exc:
            where = f"{host or settings.hub.host}:{settings.hub.port if port is None else port}"
            raise HubBindError(
                f"cannot listen on {where} ({exc.strerror or exc}); another program may use the port: "
                "set [hub] port, or pass --port (0 picks a free one)"
            ) from None
        url = f"ws://{connect_host(host or settings.hub.host)}:{bound}"
        lock.publish(hub_url=url)
        # What start-up made (modules, settings, instruments, the engine) lives as long as the
        # process: keep it out of the cyclic collector's full passes, each a pause of the loop.
        gc.freeze()
        shown = host or settings.hub.host
        out.write(
            f"tterm hub: listening on http://{shown}:{bound}\n"
            f"  webhooks: POST /webhook/<strategy> ({len(settings.hub.strategies)} strategies configured)\n"
            f"  attach:   tterm attach {url}\n"
            f"  data:     {shown_root}\n"
        )
        out.flush()
        if hub.router.recovery.total:
            out.write(f"  recovery: {hub.router.recovery.describe()}\n")
            out.flush()
        if ready is not None:
            ready(hub)
        await stop.wait()
    finally:
        out.write("tterm hub: stopping\n")
        out.flush()
        await hub.stop()
        await engine.stop()
        engine.journal.close()
    return 0


class EmbeddedHub:
    """The embedded engine with webhooks served beside it (plain ``tterm`` with ``[hub] serve_webhooks``).

    It is the engine as far as the terminal can tell: every EngineClient call goes to the engine,
    ``start``/``stop`` also start and stop the hub, and snapshots carry the latest alert outcomes.
    The remote API is not served here: ``tterm hub`` is the way to attach from elsewhere.
    """

    def __init__(self, engine: Engine, settings: Settings, *, data_dir: Path) -> None:
        self.engine = engine
        self._settings = settings
        self._data_dir = data_dir
        self.hub: Hub | None = None

    async def start(self) -> None:
        await self.engine.start()
        webhook_secret, _ = hub_secrets()
        self.hub = Hub(
            self.engine,
            self._settings.hub,
            data_dir=self._data_dir,
            webhook_secret=webhook_secret,
            api_token=None,
            remote=False,
        )
        port = await self.hub.start()
        self.engine.ingest(
            Notice(
                level="info" if webhook_secret else "warning",
                text=(
                    f"serving webhooks on http://{self._settings.hub.host}:{port}/webhook/<strategy>"
                    + ("" if webhook_secret else "; no webhook_secret is set, so every alert is refused")
                ),
                source="hub",
            )
        )

    async def stop(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None
        await self.engine.stop()

    async def snapshot(self) -> Any:
        snap = await self.engine.snapshot()
        if self.hub is not None:
            snap = replace(snap, signals=tuple(self.hub.router.recent))
        return snap

    def __getattr__(self, name: str) -> Any:
        # Everything else (events, place, flatten, instrument...) is the engine's own.
        return getattr(self.engine, name)


def with_embedded_hub(engine: Engine, settings: Settings) -> Engine | EmbeddedHub:
    """``engine``, wrapped to serve webhooks too when ``[hub] serve_webhooks`` is on."""
    if not settings.hub.serve_webhooks:
        return engine
    from tterm.config import data_dir

    return EmbeddedHub(engine, settings, data_dir=data_dir(settings))


#: How long ``tterm serve`` waits for the hub it starts to bind (its brokers connect first).
HUB_READY_WAIT = 60.0


class HubProcess:
    """A ``tterm hub`` child of ``tterm serve``: started when no hub owns the data dir, stopped
    (SIGTERM, then SIGKILL after 30 s) when serve stops. Its stdout goes to serve's stderr."""

    def __init__(self, config: Path | str | None = None) -> None:
        words = [sys.executable, "-m", "tterm.cli"]
        if config is not None:
            words += ["--config", str(Path(config).expanduser().resolve())]
        # Its own session: Ctrl+C on serve stops the browser sessions first, then the hub, in order.
        self.proc = subprocess.Popen(
            [*words, "hub"], stdout=subprocess.PIPE, text=True, encoding="utf-8", start_new_session=True
        )

    def wait_ready(self, timeout: float = HUB_READY_WAIT) -> bool:
        """Wait for the hub's "listening" line (True), or its exit or the timeout (False). Its
        output then keeps going to serve's stderr."""
        lines: queue.Queue[str] = queue.Queue()
        out = self.proc.stdout
        assert out is not None

        def pump() -> None:
            for line in out:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, name="hub-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        ready = False
        while not ready:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if not line:
                return False
            sys.stderr.write(line)
            ready = line.startswith("tterm hub: listening on")

        def forward() -> None:
            while line := lines.get():
                sys.stderr.write(line)

        threading.Thread(target=forward, name="hub-stdout-forward", daemon=True).start()
        return True

    def stop(self) -> int | None:
        """SIGTERM, wait up to 30 s, then SIGKILL; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
