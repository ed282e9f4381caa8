"""ProjectX Gateway (TopstepX and other ProjectX firms): REST and the SignalR user and market hubs.

``build`` is the factory the broker registry calls with the generic ``options`` / ``secrets``
mappings from the config: ``[brokers.<name>] type = "projectx"``, ``username = "..."``, options
such as ``firm = "topstepx"``, and the secret ``api_key`` from the secrets file or
``TTERM_<NAME>_API_KEY``. The options and credentials are declared in
:mod:`tterm.brokers.projectx.config`; the network code is imported only when a broker is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.brokers.projectx.config import ADAPTER, ProjectXCredentials, ProjectXSettings

if TYPE_CHECKING:
    from tterm.brokers.projectx.broker import ProjectXBroker
    from tterm.core.instruments import InstrumentMaster

__all__ = ["ADAPTER", "ProjectXBroker", "ProjectXCredentials", "ProjectXSettings", "build"]


def __getattr__(name: str) -> Any:
    if name == "ProjectXBroker":
        from tterm.brokers.projectx.broker import ProjectXBroker

        return ProjectXBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(
    name: str,
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    instruments: InstrumentMaster,
    clock: Any = None,
    data_dir: Path,
) -> ProjectXBroker:
    """A ProjectX broker named ``name``; raises BrokerConfigError naming any bad option or missing secret."""
    from tterm.brokers.projectx.broker import ProjectXBroker

    settings = ProjectXSettings.from_options(options, broker=name)
    credentials = ProjectXCredentials.from_secrets(secrets, broker=name)
    return ProjectXBroker(name, settings, credentials, instruments=instruments, clock=clock, data_dir=Path(data_dir))
