"""Charles Schwab (Trader API, Market Data, streamer): shares and options, one login per person.

``build`` is the factory the broker registry calls with the generic ``options`` / ``secrets``
mappings from the config: ``[brokers.<name>] type = "schwab"``, ``environment = "live"`` (Schwab
has no sandbox), options such as ``callback_url``, and secrets ``app_key`` and ``app_secret``
from the secrets file or ``TTERM_<NAME>_<KEY>``. The login itself is a person's: ``tterm login
<name>``. The network code is imported only when a broker is built, so reading the config stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.brokers.schwab.config import ADAPTER, SchwabCredentials, SchwabSettings

if TYPE_CHECKING:
    from tterm.brokers.schwab.broker import SchwabBroker
    from tterm.core.instruments import InstrumentMaster

__all__ = ["ADAPTER", "SchwabBroker", "SchwabCredentials", "SchwabSettings", "build"]


def __getattr__(name: str) -> Any:
    if name == "SchwabBroker":
        from tterm.brokers.schwab.broker import SchwabBroker

        return SchwabBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(
    name: str,
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    instruments: InstrumentMaster,
    clock: Any = None,
    data_dir: Path,
) -> SchwabBroker:
    """A Schwab broker named ``name``; raises BrokerConfigError naming any bad option or missing secret."""
    from tterm.brokers.schwab.broker import SchwabBroker

    settings = SchwabSettings.from_options(options, broker=name)
    credentials = SchwabCredentials.from_secrets(secrets, broker=name, settings=settings)
    return SchwabBroker(name, settings, credentials, instruments=instruments, clock=clock, data_dir=Path(data_dir))
