"""Tradovate (demo and live): REST, trading socket and market-data socket.

``build`` is the factory the broker registry calls with the generic ``options`` / ``secrets``
mappings from the config: ``[brokers.<name>] type = "tradovate"``, options such as
``environment = "live"``, and secrets ``username``, ``password``, ``cid``, ``sec`` (and optionally
``app_id``) from the secrets file or ``TTERM_<NAME>_<KEY>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tterm.brokers.tradovate.broker import TradovateBroker
from tterm.brokers.tradovate.config import TradovateCredentials, TradovateSettings
from tterm.core.instruments import InstrumentMaster

__all__ = ["TradovateBroker", "TradovateCredentials", "TradovateSettings", "build"]


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
    settings = TradovateSettings.from_options(options, broker=name)
    credentials = TradovateCredentials.from_secrets(secrets, broker=name, settings=settings)
    return TradovateBroker(name, settings, credentials, instruments=instruments, clock=clock, data_dir=Path(data_dir))
