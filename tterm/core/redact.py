"""Masking of secrets before anything is written to the journal, a log or the screen.

``redact(obj)`` returns a copy of a JSON-like structure (mappings, lists, tuples, strings) in
which the value of every secret-looking key is masked, and secrets embedded in free text
(``Bearer <token>``, ``password=...`` in a URL or message) are masked too. It is fail-closed: a
key that merely looks like a credential is masked, because a masked harmless value costs a
little readability while a leaked token costs an account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

MASK = "****"

#: Whole key names (after normalisation to snake_case) that hold a credential. ``sec`` and
#: ``cid`` are Tradovate's API secret and client id; ``key`` is a bare API key.
_SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "session_token",
        "remember_token",
        "api_key",
        "apikey",
        "passphrase",
        "sec",
        "cid",
        "key",
        "authorization",
        "auth",
        "cookie",
        "set_cookie",
        "credentials",
        "private_key",
        "client_secret",
        "app_secret",
        "verify_key",
    }
)

#: Any key containing one of these words as a ``_``-separated part is a secret
#: (``user_password``, ``md_access_token``, ``webhook_secret``, ``x_api_key``...).
_SECRET_PARTS = frozenset(
    {"password", "passwd", "secret", "token", "passphrase", "apikey", "authorization", "credentials"}
)

#: Keys ending in ``_key`` are secrets (``app_key``, ``signing_key``) except these, which the
#: engine uses for non-secret identifiers.
_NOT_SECRET_KEYS = frozenset({"dedup_key", "idempotency_key", "sort_key", "state_key", "binding_key"})

_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")

# Secrets inside free text: an HTTP auth header value, and key=value / "key": "value" pairs.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{4,})")
_PAIR = re.compile(
    r"""(?ix)
    (?P<k>["']?\b[a-z0-9_-]*(?:password|passwd|secret|token|passphrase|api[_-]?key)["']?|["'](?:sec|cid)["'])
    (?P<sep>\s*[:=]\s*)
    (?P<q>["']?)
    (?P<v>[^\s"'&,;}]+)
    """
)


@lru_cache(maxsize=4096)
def normalize_key(key: str) -> str:
    """``refreshToken``, ``Refresh-Token`` and ``REFRESH_TOKEN`` all become ``refresh_token``."""
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", key))
    return _NON_WORD.sub("_", s.lower()).strip("_")


def is_secret_key(key: object) -> bool:
    """True for a mapping key whose value must never be shown (case, dash and camel insensitive)."""
    if not isinstance(key, str):
        return False
    return _is_secret_name(key)


@lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    # Cached: the journal asks about the same few dozen keys for every event it records.
    norm = normalize_key(key)
    if norm in _SECRET_NAMES:
        return True
    parts = norm.split("_")
    if any(p in _SECRET_PARTS for p in parts):
        return True
    return parts[-1] == "key" and norm not in _NOT_SECRET_KEYS


def mask(value: str) -> str:
    """``****`` plus at most the last 2 characters (only for values long enough to spare them)."""
    value = str(value)
    if len(value) < 8:
        return MASK
    return MASK + value[-2:]


#: Words one of which is in any text the two patterns above can match (a cheap pre-check, so the
#: regexes only run on text that could hold a credential).
_HINTS = ("bearer", "basic", "pass", "secret", "token", "api", "sec", "cid")


def redact_text(text: str) -> str:
    """Mask credentials embedded in free text (headers, URLs, ``key=value`` fragments)."""
    if not text:
        return text
    lower = text.lower()
    if not any(h in lower for h in _HINTS):
        return text
    text = _BEARER.sub(lambda m: f"{m.group(1)} {mask(m.group(2))}", text)
    return _PAIR.sub(lambda m: f"{m.group('k')}{m.group('sep')}{m.group('q')}{mask(m.group('v'))}", text)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` with secret values masked; mappings become dicts, other types are kept.

    Values under a secret-looking key are masked whatever their type (a nested mapping under
    ``credentials`` is masked whole); ``None`` and empty strings stay as they are so that "not
    set" remains visible.
    """
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if is_secret_key(k) and v is not None and v != "":
                out[k] = mask(v) if isinstance(v, str | int | float) else MASK
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj
