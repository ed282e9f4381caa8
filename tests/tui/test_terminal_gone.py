"""The terminal-lost check, per driver: a TTY that hangs up, and textual-serve's pipe."""

from __future__ import annotations

import os
import pty
import sys

import pytest

from tterm.tui.terminal import terminal_gone

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
