"""Wiring: settings -> clock, instruments, journal, brokers, risk -> Engine; and the terminal launch.

This is the one place that knows how the parts fit together, so ``tterm``, ``tterm hub``, the
CLI commands and the tests all build the same engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.brokers.registry import UnknownBrokerType, adapter
from tterm.config import BrokerSettings, Settings, data_dir, load_secrets
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import AccountOptions, Engine
from tterm.core.files import private_dir
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import AccountKind

if TYPE_CHECKING:
    from tterm.core.alerts import AlertActions
    from tterm.core.broker import Broker
    from tterm.risk.monitor import RiskMonitor


class BuildError(Exception):
    """The configured engine cannot be built (a broker type with no adapter, a missing rule profile)."""


def build_core(settings: Settings, *, clock: CmeClock | None = None) -> tuple[CmeClock, InstrumentMaster]:
    """The exchange clock and the instrument master every part shares."""
    clock = clock or CmeClock(default_calendar())
    instruments = InstrumentMaster(
        calendar=clock.calendar,
        today=lambda: clock.trade_date(),
        fee_overrides=dict(settings.fees),
        equities=settings.instruments.equities,
    )
    return clock, instruments


def build_brokers(
    settings: Settings,
    *,
    instruments: InstrumentMaster,
    clock: CmeClock,
    paper_seed: int | None = None,
    scripted: bool = False,
    root: Path | None = None,
) -> list[Broker]:
    """Every enabled broker, real ones first (they are preferred for quotes), paper last."""
    root = root or data_dir(settings)
    brokers: list[Broker] = []
    for name, cfg in settings.brokers.items():
        if cfg.enabled:
            brokers.append(build_broker(name, cfg, settings, instruments=instruments, clock=clock, root=root))
    if settings.paper.enabled:
        from tterm.brokers.paper.broker import PaperAccountSpec, PaperBroker

        seed = paper_seed if paper_seed is not None else settings.paper.seed
        brokers.append(
            PaperBroker(
                "paper",
                accounts=[
                    PaperAccountSpec(
                        id=a.id, name=a.name, kind=AccountKind(a.kind), balance=a.balance, profile=a.profile
                    )
                    for a in settings.paper.accounts
                ],
                instruments=instruments,
                clock=clock,
                seed=seed,
                quote_hz=settings.paper.quote_hz,
                symbols=list(settings.paper.symbols),
                store_path=root / "paper.sqlite3",
                scripted=scripted,
                replay=settings.paper.replay,
            )
        )
    return brokers


def build_broker(
    name: str, cfg: BrokerSettings, settings: Settings, *, instruments: InstrumentMaster, clock: Any, root: Path
) -> Broker:
    """One ``[brokers.<name>]`` broker, built through the broker registry (not connected).

    Raises :class:`BuildError` for a type with no adapter (naming the types that exist) and
    ``BrokerConfigError`` for bad options or missing credentials.
    """
    try:
        spec = adapter(cfg.type)
    except UnknownBrokerType as exc:
        raise BuildError(f"broker {name}: {exc}") from None
    # The login name is not secret and lives in config.toml; adapters read it with the
    # credentials, so it joins the secrets mapping (the secrets file or env may override it).
    secrets = dict(load_secrets(name, known_brokers=settings.brokers))
    if cfg.username:
        secrets.setdefault("username", cfg.username)
    factory = spec.factory()
    return factory(name, cfg.adapter_options(), secrets, instruments=instruments, clock=clock, data_dir=root)


def build_engine(
    settings: Settings,
    *,
    paper_seed: int | None = None,
    scripted: bool = False,
    clock: CmeClock | None = None,
    journal: Journal | None = None,
    root: Path | None = None,
) -> Engine:
    """The engine the config describes (not started: call ``await engine.start()``)."""
    root = root or data_dir(settings)
    private_dir(root)
    clock, instruments = build_core(settings, clock=clock)
    brokers = build_brokers(
        settings, instruments=instruments, clock=clock, paper_seed=paper_seed, scripted=scripted, root=root
    )
    options = {
        account_id: AccountOptions(alias=a.alias, profile=a.profile, max_order_qty=a.max_order_qty)
        for account_id, a in settings.accounts.items()
    }
    engine = Engine(
        brokers=brokers,
        instruments=instruments,
        journal=journal or Journal(root / "journal.sqlite3"),
        clock=clock,
        account_options=options,
    )
    engine.alerts.configure(alert_actions(settings))
    if settings.risk.enabled:
        attach_risk(engine, settings)
    return engine


def alert_actions(settings: Settings) -> AlertActions:
    """The webhook-outs and commands ``[alerts]`` names; a webhook's URL may instead come from
    ``secrets.toml`` ``[alerts] webhook_<name>`` or ``TTERM_ALERTS_WEBHOOK_<NAME>`` (it wins)."""
    from tterm.core.alerts import AlertActions

    webhooks = dict(settings.alerts.webhooks)
    for key, value in load_secrets("alerts", known_brokers=settings.brokers).items():
        if key.startswith("webhook_") and len(key) > len("webhook_"):
            webhooks[key.removeprefix("webhook_")] = value
    return AlertActions(
        webhooks=webhooks,
        commands={k: list(v) for k, v in settings.alerts.commands.items()},
        timeout=settings.alerts.timeout_seconds,
    )


def attach_risk(engine: Engine, settings: Settings) -> RiskMonitor:
    """The prop-firm risk monitor and pre-trade checks, on every account of ``engine``.

    Every rule profile named in the config must exist (shipped, or in ``<config dir>/profiles``),
    and the news calendar (shipped, plus ``<config dir>/news.toml``) must be valid. Edited later,
    both are reloaded while tterm runs; a bad edit is reported and the previous set stays.
    """
    from tterm.risk.monitor import RiskMonitor
    from tterm.risk.news import CalendarError, load_calendar
    from tterm.risk.profiles import ProfileError, ProfileIncomplete, UnknownProfile, load_profiles
    from tterm.risk.reload import RuleFiles

    try:
        profiles = load_profiles()
    except ProfileError as exc:
        raise BuildError(f"rule profiles:\n{exc}") from None
    named = [(f'accounts."{aid}".profile', a.profile) for aid, a in settings.accounts.items() if a.profile]
    if settings.paper.enabled:
        named += [
            (f"paper.accounts[{i}].profile", a.profile) for i, a in enumerate(settings.paper.accounts) if a.profile
        ]
    for key, pid in named:
        try:
            profiles.get(pid).require_enforceable()
        except (UnknownProfile, ProfileIncomplete) as exc:
            raise BuildError(f"{key}: {exc}") from None
    try:
        calendar = load_calendar()
    except CalendarError as exc:
        raise BuildError(f"news calendar:\n{exc}") from None
    return RiskMonitor(
        engine, profiles=profiles, settings=settings.risk, calendar=calendar, files=RuleFiles.default()
    ).attach()


def ssh_profile_active(settings: Settings, ssh: bool | None = None) -> bool:
    """Whether to use the low-bandwidth SSH profile (explicit flag, then config, then SSH_CONNECTION)."""
    if ssh is not None:
        return ssh
    mode = settings.general.ssh_profile
    if mode == "on":
        return True
    if mode == "off":
        return False
    return bool(os.environ.get("SSH_CONNECTION"))


def apply_ssh_environment(active: bool) -> None:
    """Textual reads these at import time, so this runs before anything imports textual."""
    if active:
        os.environ.setdefault("TEXTUAL_FPS", "20")
        os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
        os.environ.setdefault("TEXTUAL_SMOOTH_SCROLL", "0")


def run_terminal(
    settings: Settings,
    *,
    paper_seed: int | None = None,
    ssh: bool | None = None,
    config_file: Path | str | None = None,
) -> Any:
    """Run the full-screen terminal on the embedded engine (plain ``tterm``).

    Watchlist edits and the theme chosen in the terminal are saved to ``config_file`` (default: the
    config path), changing only those keys.
    """
    active = ssh_profile_active(settings, ssh)
    apply_ssh_environment(active)
    from tterm.tui.app import TtermApp

    engine: Any = build_engine(settings, paper_seed=paper_seed)
    if settings.hub.serve_webhooks:
        # The engine serves TradingView alerts while the terminal runs. Imported only then: the
        # hub brings aiohttp's server, a tenth of a second of start-up nobody else needs.
        from tterm.hub.service import with_embedded_hub

        engine = with_embedded_hub(engine, settings)
    from tterm.config import config_dir, edit_config

    target = Path(config_file).expanduser() if config_file is not None else None
    app = TtermApp(
        engine,
        settings=settings,
        ssh=active,
        owns_engine=True,
        persist=lambda edits: edit_config(edits, target),
        config_dir=target.parent if target is not None else config_dir(),
    )
    return app.run(mouse=not active)
