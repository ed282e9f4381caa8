"""The broker registry: every broker type tterm can build, in one place.

``[brokers.<name>] type = "..."`` in config.toml must name a type listed here; the config
checks its options against the adapter's declaration, ``tterm doctor`` asks it which
credentials are missing, start-up builds brokers through it, and ``tterm login`` asks it whether
a person must log in. A new adapter joins by adding its ``config.ADAPTER`` to :data:`ADAPTERS`
(and a fixture to the contract test suite). The embedded paper broker is configured under
``[paper]`` and is not a ``[brokers.*]`` type.
"""

from __future__ import annotations

from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.projectx.config import ADAPTER as PROJECTX
from tterm.brokers.schwab.config import ADAPTER as SCHWAB
from tterm.brokers.tastytrade.config import ADAPTER as TASTYTRADE
from tterm.brokers.tradovate.config import ADAPTER as TRADOVATE

__all__ = ["ADAPTERS", "AdapterSpec", "Credentials", "UnknownBrokerType", "adapter", "known_types"]

#: Broker type -> its adapter. The one list of adapters.
ADAPTERS: dict[str, AdapterSpec] = {spec.type: spec for spec in (TRADOVATE, PROJECTX, SCHWAB, TASTYTRADE)}


class UnknownBrokerType(ValueError):
    """A broker type with no adapter in this build."""


def known_types() -> list[str]:
    return sorted(ADAPTERS)


def adapter(broker_type: str) -> AdapterSpec:
    """The adapter of ``broker_type``, or :class:`UnknownBrokerType` naming the types that exist."""
    spec = ADAPTERS.get(broker_type)
    if spec is not None:
        return spec
    known = ", ".join(repr(t) for t in known_types()) or "none"
    raise UnknownBrokerType(f"no adapter for broker type {broker_type!r}; broker types with an adapter: {known}")
