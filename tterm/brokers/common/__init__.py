"""Shared, vendor-free plumbing for the real brokers: HTTP client, tokens, rate limits, backoff,
stale-stream watchdog, the shared token store, socket supervision and the multi-stream state roll-up, settings parsing
and an injectable clock."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tterm.brokers.common.backoff import Backoff
    from tterm.brokers.common.clock import Clock, SystemClock, as_clock
    from tterm.brokers.common.http import BadResponse, ConnectionFailed, HttpClient, HttpResponse
    from tterm.brokers.common.ratelimit import RateLimiter, Window
    from tterm.brokers.common.settings import BrokerConfigError, parse_options, require_secrets
    from tterm.brokers.common.streams import SocketSupervisor, StreamStates, SupervisedSocket
    from tterm.brokers.common.token_store import TokenStore, token_path
    from tterm.brokers.common.tokens import Token, TokenManager
    from tterm.brokers.common.watchdog import StaleWatchdog

#: Where each name lives. Loaded on first use (PEP 562): importing one room of this package (the
#: CLI needs the settings and the token store) must not import httpx and websockets for the others.
_WHERE = {
    "Backoff": "backoff",
    "Clock": "clock",
    "SystemClock": "clock",
    "as_clock": "clock",
    "BadResponse": "http",
    "ConnectionFailed": "http",
    "HttpClient": "http",
    "HttpResponse": "http",
    "RateLimiter": "ratelimit",
    "Window": "ratelimit",
    "BrokerConfigError": "settings",
    "parse_options": "settings",
    "require_secrets": "settings",
    "SocketSupervisor": "streams",
    "StreamStates": "streams",
    "SupervisedSocket": "streams",
    "TokenStore": "token_store",
    "token_path": "token_store",
    "Token": "tokens",
    "TokenManager": "tokens",
    "StaleWatchdog": "watchdog",
}


def __getattr__(name: str) -> Any:
    room = _WHERE.get(name)
    if room is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{room}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Backoff",
    "BadResponse",
    "BrokerConfigError",
    "Clock",
    "ConnectionFailed",
    "HttpClient",
    "HttpResponse",
    "RateLimiter",
    "SocketSupervisor",
    "StaleWatchdog",
    "StreamStates",
    "SupervisedSocket",
    "SystemClock",
    "Token",
    "TokenManager",
    "TokenStore",
    "Window",
    "as_clock",
    "parse_options",
    "require_secrets",
    "token_path",
]
