"""Tradovate (demo and live): REST, trading socket and market-data socket.

``build`` is the factory the broker registry calls with the generic ``options`` / ``secrets``
mappings from the config: ``[brokers.<name>] type = "tradovate"``, options such as
``environment = "live"``, and secrets ``username``, ``password``, ``cid``, ``sec`` (and optionally
``app_id``) from the secrets file or ``TTERM_<NAME>_<KEY>``. The options and credentials are
declared in :mod:`tterm.brokers.tradovate.config`; the network code is imported only when a
broker is built, so reading the config stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.brokers.tradovate.config import ADAPTER, TradovateCredentials, TradovateSettings

if TYPE_CHECKING:
    from tterm.brokers.tradovate.broker import TradovateBroker
    from tterm.core.instruments import InstrumentMaster

__all__ = ["ADAPTER", "TradovateBroker", "TradovateCredentials", "TradovateSettings", "build"]


def __getattr__(name: str) -> Any:
    if name == "TradovateBroker":
        from tterm.brokers.tradovate.broker import TradovateBroker

        return TradovateBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(
    name: str,
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    instruments: InstrumentMaster,
    clock: Any = None,
    data_dir: Path,
) -> TradovateBroker:
    """A Tradovate broker named ``name``; raises BrokerConfigError naming any bad option or missing secret."""
    from tterm.brokers.tradovate.broker import TradovateBroker

    settings = TradovateSettings.from_options(options, broker=name)
    credentials = TradovateCredentials.from_secrets(secrets, broker=name, settings=settings)
    return TradovateBroker(name, settings, credentials, instruments=instruments, clock=clock, data_dir=Path(data_dir))
