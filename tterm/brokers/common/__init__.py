"""Shared, vendor-free plumbing for the real brokers: HTTP client, tokens, rate limits, backoff,
stale-stream watchdog, the shared token store, socket supervision and the multi-stream state roll-up, settings parsing
and an injectable clock."""

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock, SystemClock, as_clock
from tterm.brokers.common.http import BadResponse, ConnectionFailed, HttpClient, HttpResponse
from tterm.brokers.common.ratelimit import RateLimiter, Window
from tterm.brokers.common.settings import BrokerConfigError, parse_options, require_secrets
from tterm.brokers.common.streams import SocketSupervisor, StreamStates, SupervisedSocket
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.common.watchdog import StaleWatchdog

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
