"""Textual's Linux driver, made safe for a terminal that goes away (POSIX only).

When the pty's master closes (tmux kill-session, a dropped SSH session) the kernel hangs the
terminal up: the session leader gets SIGHUP *and* SIGCONT, and every write fails with EIO.
Textual 8.2.8's driver does two things then that hung ``tterm`` in its shutdown for good:

* Its SIGCONT handler "resumes" application mode even though it was never suspended: it starts
  a second output thread (and input thread) on the dead terminal and forgets the first.
* Its output thread (``textual/drivers/_writer_thread.py``) dies on the first write that raises,
  and its queue is bounded (30 writes): the next writes fill it, and ``put`` (a frame, or
  ``stop()`` in ``App._shutdown``) then blocks the main thread forever, with the data dir locked
  and the broker sockets open.

So this driver resumes only after a suspend it did, and hands the output thread a
:class:`~tterm.tui.terminal.TerminalOutput`, which turns a failed write into "the terminal went
away" (the app shuts down in order) and drops the rest, so the thread keeps draining its queue.
"""

from __future__ import annotations

import contextlib
from typing import Any

from textual.drivers.linux_driver import LinuxDriver

from tterm.tui.terminal import TerminalOutput


class HangupSafeDriver(LinuxDriver):
    """:class:`LinuxDriver` that survives the terminal going away (see the module docstring)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        # Before super().__init__, which installs the SIGCONT handler that reads this flag.
        self._suspended = False
        super().__init__(app, **kwargs)
        self.output = TerminalOutput(self._file, self._output_failed)
        # LinuxDriver builds its WriterThread on ``self._file`` in start_application_mode.
        self._file = self.output  # type: ignore[assignment]

    def write(self, data: str) -> None:
        if not self.output.gone.is_set():
            super().write(data)

    def suspend_application_mode(self) -> None:
        self._suspended = True
        super().suspend_application_mode()

    def resume_application_mode(self) -> None:
        self._suspended = False
        super().resume_application_mode()

    def _sigcont_application(self, *args: Any) -> None:
        # A SIGCONT with no suspend before it is the kernel's, sent with SIGHUP on a hang-up (or
        # a stray `kill -CONT`): there is nothing to resume, and resuming would start a second
        # output thread on the dead terminal.
        if self._suspended:
            super()._sigcont_application(*args)

    def _output_failed(self, reason: str) -> None:
        """From the output thread: tell the app on its loop (which may already be closed)."""
        gone = getattr(self._app, "terminal_went_away", None)
        if gone is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(gone, reason)


__all__ = ["HangupSafeDriver"]
