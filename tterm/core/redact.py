"""Masking of secrets before anything is written to the journal, a log or the screen.

Two complementary nets:

- by shape: ``redact(obj)`` returns a copy of a JSON-like structure in which the value of every
  secret-looking key is masked, and credentials embedded in free text (``Bearer <token>``,
  ``password=...``) are masked too. It is fail-closed: a key that merely looks like a credential
  is masked, because a masked harmless value costs a little readability while a leaked token
  costs an account.
- by value: brokers register every secret they hold (passwords, API secrets, each token as it is
  issued) with :data:`REDACTOR`, and the hub its webhook secret and API token; :meth:`Redactor.scrub`
  replaces them anywhere in any text, in any letter case (an alert's ticker is upper-cased before
  an error quotes it), fragments included (some libraries log an elided copy of a frame, head and
  tail of the payload). :func:`redact_text` applies it, so every string the journal stores masks
  registered values too (an error message quoting a field the secret was put in), and
  :class:`RedactingFilter` / :class:`RedactingLogger` apply it to log records.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping
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


def mask(value: str | int | float) -> str:
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
    if REDACTOR.active:
        text = REDACTOR.scrub(text)
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


# --------------------------------------------------------------------------- known secret values

#: Fragments shorter than this are not treated as a secret (they would match ordinary text).
_MIN_FRAGMENT = 8

#: A fixed (non-rotating) secret at least this long is treated as machine-made (an API secret).
_LONG_FIXED = 24


class Redactor:
    """A set of secret strings to mask. Long-lived secrets stay; rotating tokens keep the newest."""

    def __init__(self, *, keep_rotating: int = 16) -> None:
        self._fixed: set[str] = set()
        self._rotating: deque[str] = deque(maxlen=keep_rotating)
        self._lock = threading.Lock()
        #: Bumped whenever a secret is added, so a cache of scrubbed text knows to start over.
        self.generation = 0

    def add(self, secret: str | None, *, rotating: bool = False) -> None:
        """Mask ``secret`` from now on. Values shorter than 4 characters are masked only whole."""
        if not secret:
            return
        secret = str(secret)
        with self._lock:
            if rotating:
                if secret not in self._rotating:
                    self._rotating.append(secret)
                    self.generation += 1
            elif secret not in self._fixed:
                self._fixed.add(secret)
                self.generation += 1

    @property
    def active(self) -> bool:
        """Whether any secret is registered (a cheap check before scrubbing)."""
        return bool(self._fixed or self._rotating)

    def secrets(self) -> list[str]:
        with self._lock:
            return sorted({*self._fixed, *self._rotating}, key=len, reverse=True)

    def _fragmentable(self) -> list[str]:
        """Secrets whose fragments are masked too: machine-made tokens and long random keys. A
        human password can contain ordinary words, so it is only ever masked whole."""
        with self._lock:
            return [s for s in {*self._rotating, *self._fixed} if s in self._rotating or len(s) >= _LONG_FIXED]

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret, and every long fragment of a token, masked."""
        if not text:
            return text
        secrets = self.secrets()
        if not secrets:
            return text
        lowered: str | None = None
        for secret in secrets:
            if len(secret) < 4:
                continue
            if secret in text:
                text = text.replace(secret, MASK)
                lowered = None
                continue
            if lowered is None:
                lowered = text.lower()
            if secret.lower() in lowered:  # the same secret in another letter case
                text = re.sub(re.escape(secret), MASK, text, flags=re.IGNORECASE)
                lowered = None
        return _mask_fragments(text, self._fragmentable())

    def __contains__(self, text: str) -> bool:
        return self.scrub(text) != text


def _mask_fragments(text: str, secrets: Iterable[str]) -> str:
    """Mask runs of ``text`` that copy at least ``_MIN_FRAGMENT`` consecutive characters of a
    secret, in any letter case (compared lower-cased where that keeps every character in place)."""
    hit = bytearray(len(text))
    found = False
    lowered = text.lower()
    fold = len(lowered) == len(text)
    haystack = lowered if fold else text
    for secret in secrets:
        if len(secret) < _MIN_FRAGMENT * 2:
            continue
        needle = secret.lower() if fold else secret
        for i in range(len(needle) - _MIN_FRAGMENT + 1):
            frag = needle[i : i + _MIN_FRAGMENT]
            start = haystack.find(frag)
            while start != -1:
                found = True
                hit[start : start + _MIN_FRAGMENT] = b"\x01" * _MIN_FRAGMENT
                start = haystack.find(frag, start + 1)
    if not found:
        return text
    out: list[str] = []
    masking = False
    for ch, flag in zip(text, hit, strict=True):
        if flag:
            if not masking:
                out.append(MASK)
                masking = True
        else:
            masking = False
            out.append(ch)
    return "".join(out)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records are formatted and scrubbed before they leave."""

    def __init__(self, logger: logging.Logger, redactor: Redactor) -> None:
        super().__init__(logger, {})
        self.redactor = redactor

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join([str(msg), *map(str, args)])
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            # A traceback can quote a secret; log only the scrubbed exception summary.
            exc = exc_info if isinstance(exc_info, BaseException) else None
            if exc is not None:
                text = f"{text}: {type(exc).__name__}: {exc}"
        kwargs.pop("stack_info", None)
        kwargs.setdefault("stacklevel", 2)
        self.logger.log(level, "%s", self.redactor.scrub(text), **kwargs)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs records in place (install it on the app's handlers)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.redactor.scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        return True


#: The process-wide registry every broker adds its secrets to, so one filter covers them all.
REDACTOR = Redactor(keep_rotating=64)


def scrub_shown(text: str) -> str:
    """``text`` with every registered secret masked, for what reaches a screen or a client (an
    order's reject reason, a notice): a vendor that echoes a password back must not show it."""
    return REDACTOR.scrub(text) if text and REDACTOR.active else text
