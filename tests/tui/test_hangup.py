"""The real terminal in a pty: it starts under the SSH profile (warning once about missing
truecolor), and a hang-up (SIGHUP, as when an SSH session drops) makes it exit cleanly, restoring
the terminal and stopping the engine."""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty and SIGHUP")

LAUNCH = "from tterm.config import load_settings; from tterm.runtime import run_terminal; run_terminal(load_settings())"


def read_until(fd: int, needle: bytes, limit: float) -> bytes:
    """Read the pty until ``needle`` shows up (or ``limit`` seconds pass, or it closes)."""
    out = b""
    deadline = time.monotonic() + limit
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_sighup_exits_cleanly(tmp_path: Path) -> None:
    cfg, data = tmp_path / "cfg", tmp_path / "data"
    cfg.mkdir()
    (cfg / "config.toml").write_text("[paper]\nseed = 3\nquote_hz = 1.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL_", "COLORTERM"))}
    env.update(
        TERM="xterm-256color",
        TTERM_CONFIG_DIR=str(cfg),
        TTERM_DATA_DIR=str(data),
        SSH_CONNECTION="10.0.0.1 50000 10.0.0.2 22",
    )
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-c", LAUNCH], env)
    try:
        import fcntl

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        shown = read_until(fd, b"PAPER", 60)
        assert b"PAPER" in shown, shown[-2000:]
        # Under the SSH profile, without COLORTERM, it says once how to get truecolor.
        shown += read_until(fd, b"COLORTERM", 30)
        assert b"COLORTERM" in shown
        os.kill(pid, signal.SIGHUP)
        rest = b""
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            rest += read_until(fd, b"\x00never\x00", 0.2)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        assert status is not None and os.WIFEXITED(status), "the terminal did not exit after SIGHUP"
        assert os.WEXITSTATUS(status) == 0
        assert b"\x1b[?1049l" in shown + rest  # left the alternate screen: the terminal is restored
        assert (data / "journal.sqlite3").exists()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


# `tterm` itself (the CLI: it takes the data dir's lock), on a paper market streaming quotes fast.
CLI = "import sys; from tterm.cli import main; sys.exit(main())"
STREAMING = "[general]\nrefresh_hz = 60\n[paper]\nseed = 3\nquote_hz = 50.0\n"


def test_closing_the_terminal_while_it_draws_releases_the_data_dir(tmp_path: Path) -> None:
    """tmux kill-session, a dropped SSH session: the pty's master closes under a terminal that is
    busy drawing. The kernel hangs the terminal up, sending the session leader SIGHUP *and*
    SIGCONT, and every later write fails with EIO. tterm must still shut down in order: journal
    that the terminal went away, stop the engine, free the data dir and exit."""
    from tterm.core.journal import Journal
    from tterm.datalock import DataDirLock, read_owner

    cfg, data = tmp_path / "cfg", tmp_path / "data"
    cfg.mkdir()
    (cfg / "config.toml").write_text(STREAMING)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL_", "COLORTERM", "SSH_"))}
    env.update(TERM="xterm-256color", TTERM_CONFIG_DIR=str(cfg), TTERM_DATA_DIR=str(data))
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-c", CLI], env)
    closed = False
    try:
        import fcntl

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
        shown = read_until(fd, b"PAPER", 60)
        assert b"PAPER" in shown, shown[-2000:]
        assert read_owner(data) is not None  # tterm owns the data dir while it runs
        read_until(fd, b"\x00never\x00", 1.5)  # quotes stream: the screen redraws many times a second
        time.sleep(0.5)  # stop reading, so the terminal's output buffer fills and a write is under way
        os.close(fd)  # the terminal goes away
        closed = True
        deadline = time.monotonic() + 60  # generous: a failure means "hung", not "slow"
        done, status = 0, 0
        while not done and time.monotonic() < deadline:
            time.sleep(0.1)
            done, status = os.waitpid(pid, os.WNOHANG)
        assert done, "tterm hung after its terminal went away"
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert read_owner(data) is None
        with DataDirLock(data) as lock:
            lock.acquire("terminal")  # the next tterm can start
        journal = Journal(data / "journal.sqlite3")
        try:
            notices = [row.data.get("text", "") for row in journal.entries(kind="notice")]
        finally:
            journal.close()
        assert any("terminal went away" in text for text in notices), notices
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        if not closed:
            os.close(fd)
