"""Has the terminal gone away? The right question for each Textual driver.

In a real terminal (Linux driver) stdin is the terminal: it is gone when it is no longer a TTY
or hung up (an SSH session dropped). Under ``tterm serve`` (textual-serve's web driver) stdin is
a pipe from the server and is never a TTY; the session is gone when the server's end of the pipe
closed. Asking ``isatty()`` there ended every browser session after about five seconds.

A terminal can also go away mid-write (tmux kill-session, a dropped SSH session): every write to
it then fails with EIO (EPIPE for a pipe). :class:`TerminalOutput` is what Textual's output thread
writes to, so that the first such failure ends the output instead of the thread (see
:mod:`tterm.tui.driver`).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import IO

log = logging.getLogger(__name__)


def terminal_gone(fd: int, *, web: bool) -> bool:
    """True when the terminal (``web=False``) or the web server's pipe (``web=True``) on ``fd`` is gone."""
    if not web:
        try:
            if not os.isatty(fd):
                return True
        except (OSError, ValueError):
            return True
    if not hasattr(select, "poll"):  # Windows: only the TTY check
        return False
    poller = select.poll()
    try:
        # An empty event mask still reports hang-up, error and a closed descriptor, and reads nothing.
        poller.register(fd, 0)
        events = poller.poll(0)
    except (OSError, ValueError):
        return True
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in events)


class TerminalOutput:
    """The terminal's output file for Textual's writer thread, which dies on the first exception.

    A write or flush that fails (EIO once the terminal hung up, EPIPE, any ``OSError``) marks the
    terminal gone, calls ``on_gone`` once with the reason, and from then on everything written is
    dropped: the writer thread keeps draining its bounded queue, so the app never blocks on it.
    """

    def __init__(self, file: IO[str], on_gone: Callable[[str], object]) -> None:
        self._file = file
        self._on_gone = on_gone
        self._lock = threading.Lock()
        self.gone = threading.Event()

    def write(self, text: str) -> None:
        if not self.gone.is_set():
            try:
                self._file.write(text)
            except (OSError, ValueError) as exc:  # ValueError: the file was closed under us
                self._failed(exc)

    def flush(self) -> None:
        if not self.gone.is_set():
            try:
                self._file.flush()
            except (OSError, ValueError) as exc:
                self._failed(exc)

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.gone.is_set() and self._file.isatty()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.gone.is_set():
                return
            self.gone.set()
        code = getattr(exc, "errno", None)
        self._on_gone(f"{errno.errorcode.get(code, 'error')} writing to it" if code else f"output closed: {exc}")


class ExitWatchdog:
    """Ends the process ``grace`` seconds from now unless cancelled: the last resort once the
    terminal went away, should the orderly shutdown hang anyway. A hung tterm keeps the data dir
    locked and the broker sockets open; the kernel frees both when the process ends, and the
    journal (SQLite, WAL) stays consistent at any point."""

    EXIT_CODE = 1

    def __init__(self, grace: float, why: str) -> None:
        self._timer = threading.Timer(grace, self._fire, args=(grace, why))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    @staticmethod
    def _fire(grace: float, why: str) -> None:
        log.error("the shutdown did not finish %gs after: %s; ending the process", grace, why)
        logging.shutdown()
        os._exit(ExitWatchdog.EXIT_CODE)


__all__ = ["ExitWatchdog", "TerminalOutput", "terminal_gone"]
