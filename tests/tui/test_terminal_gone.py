"""The terminal-lost check, per driver: a TTY that hangs up, and textual-serve's pipe."""

from __future__ import annotations

import contextlib
import os
import pty
import sys

import pytest

from tterm.tui.terminal import TerminalOutput, terminal_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes and ptys")


def test_a_web_session_pipe_is_alive_until_the_server_closes_it() -> None:
    read, write = os.pipe()
    try:
        assert not terminal_gone(read, web=True)  # a pipe is never a TTY: that is not a loss
        os.write(write, b"keys")
        assert not terminal_gone(read, web=True)  # unread input is not a loss either
        os.close(write)
        assert terminal_gone(read, web=True)
    finally:
        os.close(read)


def test_a_pipe_is_not_a_terminal_for_the_terminal_driver() -> None:
    read, write = os.pipe()
    try:
        assert terminal_gone(read, web=False)
    finally:
        os.close(read)
        os.close(write)


def test_a_tty_is_gone_when_it_hangs_up() -> None:
    master, slave = pty.openpty()
    try:
        assert not terminal_gone(slave, web=False)
        os.close(master)
        master = -1
        assert terminal_gone(slave, web=False)
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


def test_a_closed_descriptor_is_gone() -> None:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    assert terminal_gone(read, web=True)
    assert terminal_gone(read, web=False)


def test_output_to_a_terminal_that_hung_up_is_dropped_after_one_report() -> None:
    """Textual's output thread writes here: the EIO of a hung-up terminal must neither raise
    (the thread would die and its bounded queue block the app) nor be reported more than once."""
    master, slave = pty.openpty()
    out = os.fdopen(slave, "w", encoding="utf-8", closefd=True)
    reports: list[str] = []
    output = TerminalOutput(out, reports.append)
    try:
        output.write("frame 1")
        output.flush()
        assert os.read(master, 100) == b"frame 1"
        assert not output.gone.is_set() and reports == []
        os.close(master)
        master = -1
        for n in range(50):  # more than the writer thread's queue holds
            output.write(f"frame {n}")
            output.flush()
        assert output.gone.is_set()
        assert reports == ["EIO writing to it"]
        assert not output.isatty()
    finally:
        with contextlib.suppress(OSError):
            out.close()
        if master >= 0:
            os.close(master)
