"""The ``tterm`` command: run the terminal, check the setup, export the journal.

Each subcommand is one ``add_<name>(subparsers, common)`` function listed in :data:`SUBCOMMANDS`;
it registers its parser and sets ``handler`` to a function ``(args) -> exit status``. A later
subcommand (hub, attach, login, replay, serve) is one more such function.

Exit status: 0 ok, 1 something is wrong (``doctor`` found a problem, an export failed),
2 bad usage or a bad config file (the message names the file, the key and the reason).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tterm import __version__
from tterm.brokers.common.settings import BrokerConfigError
from tterm.brokers.common.token_store import token_path
from tterm.config import (
    CONFIG_FILENAME,
    SECRETS_FILENAME,
    ConfigError,
    Settings,
    check_secrets_permissions,
    config_dir,
    config_path,
    data_dir,
    display_path,
    journal_path,
    load_secrets,
    load_settings,
    missing_credentials,
    secrets_path,
)
from tterm.core.files import secure_tree, tighten_file
from tterm.core.journal import JOURNAL_KINDS, Journal
from tterm.datalock import (
    HUB_START_WAIT,
    DataDirBusy,
    DataDirLock,
    busy_message,
    command_line,
    read_owner,
    settled_owner,
    wait_for_hub_url,
)
from tterm.login import add_login
from tterm.logs import setup_logging
from tterm.pnl_cli import add_pnl
from tterm.risk.commands import add_flatten, add_lock, add_profiles, add_replay

if TYPE_CHECKING:
    from tterm.hub.service import HubProcess

Handler = Callable[[argparse.Namespace], int]
AddSubcommand = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]", argparse.ArgumentParser], None]


# --------------------------------------------------------------------------- terminal detection


def detect_color_depth(env: Mapping[str, str]) -> str:
    """The colour depth a terminal offers, judged from the environment as Rich does:
    ``none`` (NO_COLOR set, or TERM dumb/unknown), ``truecolor`` (COLORTERM truecolor/24bit),
    ``256`` (TERM ending in -256color, or kitty), else ``16``."""
    if env.get("NO_COLOR", "") != "":
        return "none"
    term = env.get("TERM", "").strip().lower()
    if term in ("dumb", "unknown"):
        return "none"
    if env.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return "truecolor"
    colors = term.rpartition("-")[2]
    if colors in ("256color", "kitty"):
        return "256"
    return "16"


def detect_ssh(env: Mapping[str, str]) -> bool:
    """True when this process runs in an SSH session."""
    return any(env.get(k) for k in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def ssh_mode(settings: Settings, env: Mapping[str, str]) -> bool:
    """Whether to use the SSH profile: ``general.ssh_profile`` on/off, or auto-detected."""
    profile = settings.general.ssh_profile
    return detect_ssh(env) if profile == "auto" else profile == "on"


# --------------------------------------------------------------------------- argument types


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _day(text: str) -> datetime:
    """YYYY-MM-DD -> local midnight of that day (timezone-aware)."""
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
    # A naive midnight made aware with the machine's zone rules for that date (DST included).
    return datetime(d.year, d.month, d.day).astimezone()


def _load(args: argparse.Namespace, *, create: bool) -> Settings:
    """The settings from ``--config`` or the default file; ``create`` writes defaults on first run.

    Commands that create files (``create``) also tighten what an older tterm left readable: the
    config and data dirs to 0700 and the files in them to 0600 (``secrets.toml`` is left to the
    permission check, which refuses it loudly instead).
    """
    settings = load_settings(args.config, create=create)
    if create:
        secure_tree(config_dir(), skip=(SECRETS_FILENAME,))
        if args.config is not None:
            tighten_file(Path(args.config).expanduser())
        secure_tree(data_dir(settings))
    return settings


# --------------------------------------------------------------------------- run


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common], help="run the terminal (the default command)")
    p.add_argument("--paper-seed", type=_seed, metavar="N", default=argparse.SUPPRESS, help=_SEED_HELP)
    p.set_defaults(handler=cmd_run)


_SEED_HELP = "seed the simulated market so every run replays the same prices (overrides [paper] seed)"


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load(args, create=True)
    root = data_dir(settings)
    lock = DataDirLock(root)
    try:
        lock.acquire("terminal", command_line())
    except DataDirBusy as busy:
        # A hub owns the data dir: open the terminal on it, exactly as `tterm attach` would.
        owner = settled_owner(busy)
        if owner is None or not owner.attachable:
            print(busy_message(busy, owner, "the terminal"), file=sys.stderr)
            return 1
        token = hub_token(None)
        if not token:
            print(
                f"tterm: {busy}, and there is no API token to attach with: set TTERM_HUB_API_TOKEN or [hub] "
                f"api_token in {display_path(secrets_path())}, then run tterm attach {owner.hub_url}",
                file=sys.stderr,
            )
            return 1
        print(f"tterm: a hub owns {display_path(root)}; attaching to it at {owner.hub_url}", file=sys.stderr)
        return attach_terminal(settings, owner.hub_url, token, args.config)
    try:
        # Imported here: the terminal pulls in Textual, which doctor and journal export do not need.
        from tterm.runtime import run_terminal

        setup_logging(root)
        seed = args.paper_seed if args.paper_seed is not None else settings.paper.seed
        rc = run_terminal(settings, paper_seed=seed, ssh=ssh_mode(settings, os.environ), config_file=args.config)
        return rc if isinstance(rc, int) else 0
    finally:
        lock.release()


# --------------------------------------------------------------------------- doctor


@dataclass(frozen=True, slots=True)
class Problem:
    what: str
    fix: str


def add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the config, secrets, data and terminal; exit 1 if something is wrong",
    )
    p.set_defaults(handler=cmd_doctor)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _writable(path: Path) -> bool:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK)


def doctor(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    """Print what tterm will use and everything that is wrong, each with its fix."""
    problems: list[Problem] = []
    rows: list[tuple[str, str]] = []

    cfg = Path(args.config).expanduser() if args.config else config_path()
    settings = Settings()
    if not cfg.exists():
        rows.append(("config", f"{display_path(cfg)} (not created yet: defaults in use)"))
    else:
        try:
            settings = load_settings(cfg, create=False)
            rows.append(("config", f"{display_path(cfg)} (ok)"))
        except ConfigError as exc:
            rows.append(("config", f"{display_path(cfg)} (BROKEN; defaults shown below)"))
            problems.append(
                Problem(
                    f"the config file has errors:\n      {str(exc).replace(chr(10), chr(10) + '      ')}",
                    f"correct each key named above in {display_path(cfg)}, or move the file away to get "
                    "the defaults back",
                )
            )

    ddir = data_dir(settings)
    jpath = journal_path(settings)
    rows.append(("data dir", display_path(ddir)))
    if jpath.exists():
        rows.append(("journal", f"{display_path(jpath)} ({_human(_size(jpath))})"))
    else:
        rows.append(("journal", f"{display_path(jpath)} (not created yet)"))
    owner = read_owner(ddir)
    rows.append(("owner", owner.describe() if owner is not None else "none (no tterm engine runs on the data dir)"))
    if not _writable(ddir):
        problems.append(
            Problem(
                f"the data dir {display_path(ddir)} is not writable",
                "fix its permissions, or point TTERM_DATA_DIR / general.data_dir somewhere writable",
            )
        )

    spath = secrets_path()
    secrets_ok = True
    if not spath.exists():
        rows.append(("secrets", f"{display_path(spath)} (none)"))
    else:
        mode = spath.stat().st_mode & 0o777
        try:
            check_secrets_permissions(spath)
            rows.append(("secrets", f"{display_path(spath)} (mode {mode:04o}, ok)"))
        except ConfigError:
            secrets_ok = False
            rows.append(("secrets", f"{display_path(spath)} (mode {mode:04o}, UNSAFE)"))
            problems.append(
                Problem(
                    f"the secrets file is readable by group or others (mode {mode:04o}); tterm refuses it",
                    f"chmod 600 {spath}",
                )
            )

    brokers = []
    if settings.paper.enabled:
        brokers.append(f"paper (embedded, {len(settings.paper.accounts)} accounts)")
    enabled = settings.enabled_brokers()
    for name, b in enabled.items():
        brokers.append(f"{name} ({b.type}, {b.environment})")
        if not secrets_ok:
            continue
        try:
            secrets = load_secrets(name, known_brokers=settings.brokers)
        except ConfigError as exc:
            secrets_ok = False
            problems.append(Problem(str(exc), f"correct {display_path(spath)}"))
            continue
        for what, fix in missing_credentials(name, b, secrets):
            problems.append(Problem(f"broker {name!r} is enabled but lacks {what}", fix))
        if _needs_person(b.type) and not token_path(ddir, name).exists():
            problems.append(Problem(f"broker {name!r} needs a browser login and has none", f"tterm login {name}"))
    disabled = sorted(set(settings.brokers) - set(enabled))
    rows.append(("brokers", ", ".join(brokers) or "none enabled"))
    if disabled:
        rows.append(("", f"disabled: {', '.join(disabled)}"))
    from tterm.brokers.registry import ADAPTERS

    rows.append(("adapters", ", ".join(f"{t} ({spec.title})" for t, spec in sorted(ADAPTERS.items()))))
    caps_rows: list[str] = []
    if settings.paper.enabled:
        from tterm.brokers.paper.broker import PaperBroker

        caps_rows.append(f"paper: {PaperBroker.capabilities.describe()}")
    for name, b in enabled.items():
        spec = ADAPTERS.get(b.type)
        caps = spec.capabilities() if spec is not None else None
        if caps is not None:
            caps_rows.append(f"{name}: {caps.describe()}")
    for i, line in enumerate(caps_rows):
        rows.append(("has" if i == 0 else "", line))
    if not brokers:
        problems.append(
            Problem("no broker is enabled", "set [paper] enabled = true, or enabled = true under a [brokers.<name>]")
        )

    accounts: list[str] = []
    if settings.paper.enabled:
        for a in settings.paper.accounts:
            acct_id = f"paper:{a.id}"
            extra = settings.account_settings(acct_id)
            words = [acct_id, f'"{a.name}"', a.kind, f"{a.balance:,}"]
            if extra.profile or a.profile:
                words.append(f"profile {extra.profile or a.profile}")
            if extra.alias:
                words.append(f"alias {extra.alias}")
            accounts.append("  ".join(words))
    for acct_id, extra in settings.accounts.items():
        if acct_id.startswith("paper:"):
            continue
        words = [acct_id] + [f"{k} {v}" for k, v in extra.model_dump(exclude_none=True).items() if v != ""]
        accounts.append("  ".join(words))
    rows.append(("accounts", accounts[0] if accounts else "none"))
    rows.extend(("", a) for a in accounts[1:])
    rows.append(("default", settings.general.default_account))

    depth = detect_color_depth(env)
    size = shutil.get_terminal_size()
    ssh = detect_ssh(env)
    why = f"COLORTERM={env.get('COLORTERM', '') or '(unset)'}, TERM={env.get('TERM', '') or '(unset)'}"
    if env.get("NO_COLOR"):
        why = "NO_COLOR is set"
    rows.append(("colour", f"{depth} ({why})"))
    rows.append(("size", f"{size.columns}x{size.lines}"))
    rows.append(
        (
            "ssh",
            f"yes (SSH session detected; ssh_profile = {settings.general.ssh_profile})"
            if ssh
            else f"no (ssh_profile = {settings.general.ssh_profile})",
        )
    )
    if depth not in ("truecolor", "none"):
        if ssh:
            problems.append(
                Problem(
                    f"COLORTERM is not set over SSH, so colours fall back to {depth}",
                    "export COLORTERM=truecolor (if your local terminal shows 24-bit colour), or forward it: "
                    "`SendEnv COLORTERM` in ~/.ssh/config and `AcceptEnv COLORTERM` in the server's sshd_config",
                )
            )
        elif depth == "16":
            problems.append(
                Problem(
                    "the terminal reports only 16 colours",
                    "export COLORTERM=truecolor or TERM=xterm-256color if your terminal supports it",
                )
            )

    rows.append(("tterm", f"{__version__} (python {sys.version.split()[0]}, textual {_dist_version('textual')})"))

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.write(f"{key:<{width}}  {value}\n")
    out.write("\n")
    if not problems:
        out.write("No problems found.\n")
        return 0
    out.write(f"{len(problems)} problem{'s' if len(problems) > 1 else ''}:\n")
    for p in problems:
        out.write(f"  x {p.what}\n    fix: {p.fix}\n")
    return 1


def _needs_person(broker_type: str) -> bool:
    from tterm.brokers.registry import ADAPTERS

    spec = ADAPTERS.get(broker_type)
    return spec is not None and spec.interactive_login


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_doctor(args: argparse.Namespace) -> int:
    return doctor(args, os.environ, sys.stdout)


# --------------------------------------------------------------------------- journal


def add_journal(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("journal", help="read the journal of orders, fills, risk decisions and alerts")
    jsub = p.add_subparsers(dest="journal_command", metavar="COMMAND", required=True)
    e = jsub.add_parser(
        "export",
        parents=[common],
        help="export journal rows as CSV or JSON lines",
        description="Write journal rows (oldest first) to stdout or a file.",
    )
    e.add_argument("--format", choices=("csv", "jsonl"), required=True, help="csv (data as a JSON column) or jsonl")
    e.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="only rows from local midnight of that day on")
    e.add_argument(
        "--kind",
        action="extend",
        nargs="+",
        choices=sorted(JOURNAL_KINDS),
        metavar="KIND",
        help=f"only rows of these kinds ({', '.join(sorted(JOURNAL_KINDS))})",
    )
    e.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    e.set_defaults(handler=cmd_journal_export)


def cmd_journal_export(args: argparse.Namespace) -> int:
    settings = _load(args, create=False)
    path = journal_path(settings)
    if not path.exists():
        print(f"tterm: no journal yet at {display_path(path)}", file=sys.stderr)
    # An empty in-memory journal still writes the CSV header, so the output is always well-formed.
    journal = Journal(path) if path.exists() else Journal(":memory:")
    try:
        if args.output is None:
            n = journal.export(args.format, sys.stdout, since=args.since, kind=args.kind)
        else:
            n = _export_to_file(journal, args)
    finally:
        journal.close()
    where = display_path(args.output) if args.output else "stdout"
    print(f"tterm: exported {n} journal row{'s' if n != 1 else ''} to {where}", file=sys.stderr)
    return 0


def _export_to_file(journal: Journal, args: argparse.Namespace) -> int:
    """Export to a temp file beside the target and rename it over, so a failed export leaves no
    half-written file."""
    out: Path = args.output.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            n = journal.export(args.format, fh, since=args.since, kind=args.kind)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


# --------------------------------------------------------------------------- hub, attach, serve


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def add_hub(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "hub",
        parents=[common],
        help="run the engine headless: brokers, risk, journal, webhooks and the remote API for 'tterm attach'",
        description="Run until SIGTERM/SIGINT (under systemd or in tmux). Binds [hub] host/port (default "
        "127.0.0.1:8787); creates the webhook secret and API token in secrets.toml on first run.",
    )
    p.add_argument("--host", metavar="ADDR", help="bind address (overrides [hub] host)")
    p.add_argument("--port", type=_port, metavar="N", help="port (overrides [hub] port; 0 picks a free one)")
    p.add_argument("--paper-seed", type=_seed, metavar="N", default=argparse.SUPPRESS, help=_SEED_HELP)
    p.set_defaults(handler=cmd_hub)


def hub_token(token_file: Path | None) -> str | None:
    """The hub's API token: from ``token_file``, else TTERM_HUB_API_TOKEN or secrets.toml [hub]."""
    from tterm.hub.service import hub_token as token

    return token(token_file)


def cmd_hub(args: argparse.Namespace) -> int:
    import asyncio

    from tterm.hub.service import HubBindError, serve_hub

    settings = _load(args, create=True)
    setup_logging(data_dir(settings), stderr=True)  # headless: systemd / tmux collect stderr
    seed = args.paper_seed if getattr(args, "paper_seed", None) is not None else settings.paper.seed
    try:
        return asyncio.run(serve_hub(settings, paper_seed=seed, host=args.host, port=args.port, command=command_line()))
    except DataDirBusy as busy:
        print(busy_message(busy, busy.owner, "tterm hub"), file=sys.stderr)
        return 1
    except HubBindError as exc:
        print(f"tterm hub: {exc}", file=sys.stderr)
        return 1


def add_attach(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "attach",
        parents=[common],
        help="open the terminal on a running 'tterm hub' (ws://HOST:PORT, e.g. through ssh -L)",
        description="Closing the terminal or losing the connection changes nothing on the hub. The API token "
        "comes from --token-file, TTERM_HUB_API_TOKEN, or [hub] api_token in secrets.toml.",
    )
    p.add_argument("url", metavar="ws://HOST:PORT", help="the hub's address")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="read the hub's API token from this file")
    p.set_defaults(handler=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    settings = _load(args, create=True)
    token = hub_token(args.token_file)
    if not token:
        print(
            "tterm: no API token for the hub: set TTERM_HUB_API_TOKEN, pass --token-file, or copy [hub] api_token "
            f"from the hub's secrets.toml into {display_path(secrets_path())}",
            file=sys.stderr,
        )
        return 2
    return attach_terminal(settings, args.url, token, getattr(args, "config", None))


def attach_terminal(settings: Settings, url: str, token: str, config_file: Path | None = None) -> int:
    """Open the terminal on the hub at ``url`` (``tterm attach``, and plain ``tterm`` on a data dir
    a hub owns). Exit 1 if the hub cannot be reached. Watchlist and theme changes are saved to
    ``config_file`` (default: the config path), as in the embedded terminal."""
    import asyncio

    from tterm.core.client import EngineError
    from tterm.hub.remote import RemoteEngineClient

    setup_logging(data_dir(settings))

    async def probe() -> str:
        client = RemoteEngineClient(url, token)
        try:
            await client.connect()
            return client.hub_version
        finally:
            await client.close()

    try:
        asyncio.run(probe())
    except EngineError as exc:
        print(f"tterm: {exc}", file=sys.stderr)
        return 1
    from tterm.runtime import apply_ssh_environment

    active = ssh_mode(settings, os.environ)
    apply_ssh_environment(active)
    from tterm.config import edit_config
    from tterm.tui.app import TtermApp

    target = Path(config_file).expanduser() if config_file is not None else config_path()
    # The app "owns" only the connection: stopping it detaches; the hub runs on.
    app = TtermApp(RemoteEngineClient(url, token), settings=settings, ssh=active, owns_engine=True,
                   persist=lambda edits: edit_config(edits, target), config_dir=target.parent)  # fmt: skip
    rc = app.run(mouse=not active)
    return rc if isinstance(rc, int) else 0


def add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="offer the terminal in a web browser (textual-serve), on localhost only",
        description="Serves the terminal at http://127.0.0.1:PORT. Every browser session is 'tterm attach' to one "
        "hub: the hub that owns the data dir, else one tterm serve starts (on [hub] host/port) and stops when it "
        "stops. It has no login of its own: to reach it from elsewhere, put it behind a reverse proxy with "
        "authentication or use ssh -L (see the README).",
    )
    p.add_argument("--port", type=_port, default=8000, metavar="N", help="port (default 8000)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--attach", metavar="ws://HOST:PORT", help="serve 'tterm attach' to this hub")
    p.set_defaults(handler=cmd_serve)


def serve_command(args: argparse.Namespace, attach: str | None = None) -> str:
    """The command textual-serve runs for each browser session: ``tterm attach`` to ``attach``
    (default ``--attach``); plain ``tterm`` only when neither is given."""
    import shlex

    words = [sys.executable, "-m", "tterm.cli"]
    config = getattr(args, "config", None)
    if config is not None:
        words += ["--config", str(Path(config).expanduser().resolve())]
    url = attach or args.attach
    if url:
        words += ["attach", url]
    return " ".join(shlex.quote(w) for w in words)


def cmd_serve(args: argparse.Namespace) -> int:
    import ipaddress

    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        print(
            f"tterm: refusing to serve on {args.host}: tterm serve has no login, so it binds loopback only. "
            "Put a reverse proxy with authentication in front of it (see the README), or use ssh -L.",
            file=sys.stderr,
        )
        return 2
    settings = _load(args, create=True)
    hub: HubProcess | None = None
    url = args.attach
    if url is None:
        # One engine per data dir: every browser session attaches to the hub that owns it (a
        # session running its own engine would be a second, third... engine on the same files).
        root = data_dir(settings)
        owner = read_owner(root, wait=1.0)
        if owner is not None and owner.kind == "hub" and not owner.hub_url:
            owner = wait_for_hub_url(root, timeout=HUB_START_WAIT)
        if owner is not None and not owner.attachable:
            print(busy_message(DataDirBusy(root, owner), owner, "tterm serve"), file=sys.stderr)
            return 1
        if owner is None:
            print(f"tterm serve: no hub owns {display_path(root)}; starting one (tterm hub)", file=sys.stderr)
            from tterm.hub.service import HubProcess

            hub = HubProcess(getattr(args, "config", None))
            started = read_owner(root) if hub.wait_ready() else None
            if started is None or not started.attachable:
                rc = hub.stop()
                print(f"tterm serve: the hub did not start (exit status {rc}); see its messages above", file=sys.stderr)
                return 1
            owner = started
        url = owner.hub_url
        print(f"tterm serve: browser sessions attach to the hub at {url} ({owner.describe()})", file=sys.stderr)
    try:
        from textual_serve.server import Server

        from tterm.tui.web import TEMPLATES  # our page: fonts from this server, not a public font host

        print(f"tterm serve: http://{args.host}:{args.port} (Ctrl+C to stop)", file=sys.stderr)
        server = Server(serve_command(args, url), host=args.host, port=args.port, title="tterm",
                        templates_path=TEMPLATES)  # fmt: skip
        server.serve()
    finally:
        if hub is not None:
            print("tterm serve: stopping the hub it started", file=sys.stderr)
            hub.stop()
    return 0


# --------------------------------------------------------------------------- parser and main

#: One function per subcommand; add a new subcommand by appending its ``add_<name>``.
SUBCOMMANDS: list[AddSubcommand] = [add_run, add_doctor, add_journal, add_hub, add_attach, add_serve, add_login]
SUBCOMMANDS += [add_replay, add_flatten, add_lock, add_profiles]  # tterm.risk.commands
SUBCOMMANDS += [add_pnl]  # tterm.pnl_cli


def build_parser() -> argparse.ArgumentParser:
    # Options shared by every subcommand. SUPPRESS keeps a subcommand from overwriting a value
    # given before it (``tterm --config X doctor``).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"config file (default: {display_path(config_dir() / CONFIG_FILENAME)})",
    )
    parser = argparse.ArgumentParser(
        prog="tterm",
        description="A keyboard-first trading terminal. With no command, runs the terminal.",
        epilog="Run 'tterm COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tterm {__version__}")
    parser.add_argument("--config", type=Path, metavar="PATH", default=None, help="config file to use")
    parser.add_argument("--paper-seed", type=_seed, metavar="N", default=None, help=_SEED_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub, common)
    parser.set_defaults(handler=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tterm`` console script; returns the exit status."""
    if argv is None:
        # Run as the program (not called from a test): whatever this process creates that tterm
        # does not create privately itself (a library's file, an export) is private too.
        os.umask(os.umask(0o077) | 0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"tterm: {exc}" if "\n" not in str(exc) else f"tterm: bad configuration:\n{exc}", file=sys.stderr)
        return 2
    except BrokerConfigError as exc:
        # A broker's options or credentials, found when it is built (start-up, tterm login).
        print(f"tterm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``tterm journal export ... | head``); not an error worth a trace.
        _silence_stdout()
        return 0
    except Exception as exc:
        _crashed(exc)
        return 1


def _crashed(exc: BaseException) -> None:
    """An unexpected error: its traceback, scrubbed of every secret and token the process knows
    (and of anything that looks like one), on stderr and in the log. A raw Python traceback could
    carry a token an exception message quoted."""
    import logging
    import traceback

    from tterm.core.redact import REDACTOR, redact_text

    text = redact_text(REDACTOR.scrub("".join(traceback.format_exception(exc))))
    logging.getLogger("tterm").error("unexpected error:\n%s", text)
    print(f"tterm: unexpected error (a bug; please report it with this text):\n{text}", file=sys.stderr, end="")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
