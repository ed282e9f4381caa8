"""Keeping secrets out of logs, exception messages, the journal and the screen.

Brokers register every secret they hold (passwords, API secrets, and each token as it is
issued). :meth:`Redactor.scrub` replaces them in any text, including fragments: some libraries
log an elided copy of a frame (head and tail of the payload), so a secret can appear cut short.
:class:`RedactingLogger` is a logger that scrubs every record before it is emitted; pass it to
third-party clients (websockets) that would otherwise log raw frames at DEBUG.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"

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

    def add(self, secret: str | None, *, rotating: bool = False) -> None:
        """Mask ``secret`` from now on. Values shorter than 4 characters are masked only whole."""
        if not secret:
            return
        secret = str(secret)
        with self._lock:
            if rotating:
                if secret not in self._rotating:
                    self._rotating.append(secret)
            else:
                self._fixed.add(secret)

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
        for secret in secrets:
            if len(secret) >= 4 and secret in text:
                text = text.replace(secret, MASK)
        return _mask_fragments(text, self._fragmentable())

    def __contains__(self, text: str) -> bool:
        return self.scrub(text) != text


def _mask_fragments(text: str, secrets: Iterable[str]) -> str:
    """Mask runs of ``text`` that copy at least ``_MIN_FRAGMENT`` consecutive characters of a secret."""
    hit = bytearray(len(text))
    found = False
    for secret in secrets:
        if len(secret) < _MIN_FRAGMENT * 2:
            continue
        for i in range(len(secret) - _MIN_FRAGMENT + 1):
            frag = secret[i : i + _MIN_FRAGMENT]
            start = text.find(frag)
            while start != -1:
                found = True
                hit[start : start + _MIN_FRAGMENT] = b"\x01" * _MIN_FRAGMENT
                start = text.find(frag, start + 1)
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


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
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
