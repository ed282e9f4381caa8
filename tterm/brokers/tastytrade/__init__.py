"""Tastytrade (REST, the account streamer, DXLink market data): shares, options and futures.

``build`` is the factory the broker registry calls with the generic ``options`` / ``secrets``
mappings from the config: ``[brokers.<name>] type = "tastytrade"``, ``environment = "live"``
(production) or ``"demo"`` (the vendor's sandbox, "cert"), and the secrets ``client_secret`` and
``refresh_token`` from the secrets file or ``TTERM_<NAME>_<KEY>``. The network code is imported
only when a broker is built, so reading the config stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.brokers.tastytrade.config import ADAPTER, TastytradeCredentials, TastytradeSettings

if TYPE_CHECKING:
    from tterm.brokers.tastytrade.broker import TastytradeBroker
    from tterm.core.instruments import InstrumentMaster

__all__ = ["ADAPTER", "TastytradeBroker", "TastytradeCredentials", "TastytradeSettings", "build"]


def __getattr__(name: str) -> Any:
    if name == "TastytradeBroker":
        from tterm.brokers.tastytrade.broker import TastytradeBroker

        return TastytradeBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(
    name: str,
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    instruments: InstrumentMaster,
    clock: Any = None,
    data_dir: Path,
) -> TastytradeBroker:
    """A Tastytrade broker named ``name``; raises BrokerConfigError naming any bad option or missing secret."""
    from tterm.brokers.tastytrade.broker import TastytradeBroker

    settings = TastytradeSettings.from_options(options, broker=name)
    credentials = TastytradeCredentials.from_secrets(secrets, broker=name)
    return TastytradeBroker(name, settings, credentials, instruments=instruments, clock=clock, data_dir=Path(data_dir))
