"""Keys that arrive in one burst (a paste without bracketed paste, a macro pad, a slow SSH link)
go to the widget that has focus once the previous key is handled, in order: typed through a real
pty into the real Textual driver, not Pilot (Pilot waits for the app to go idle after each key,
which hides the race)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

ROOT = Path(__file__).resolve().parents[2]


class PtyApp:
    """The app in a pty: write bytes to it, read its reported state."""

    def __init__(self, fd: int, pid: int, state_file: Path) -> None:
        self.fd, self.pid, self.state_file = fd, pid, state_file

    def drain(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                if not os.read(self.fd, 65536):
                    return
            except OSError:
                return

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, predicate: Callable[[dict[str, Any]], bool], limit: float = 20.0) -> dict[str, Any]:
        """Poll the reported state (keeping the pty drained) until ``predicate`` holds."""
        deadline = time.monotonic() + limit
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            select.select([self.fd], [], [], 0.05)
            self.drain()
            state = self.state()
            if state and predicate(state):
                return state
        raise AssertionError(f"timed out; last state: {state}")

    def settle(self, seconds: float = 0.6) -> dict[str, Any]:
        """Let the app run a little (draining its output) and return its state."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            select.select([self.fd], [], [], 0.05)
            self.drain()
        return self.state()

    def burst(self, data: bytes) -> None:
        """All of ``data`` in one write: the driver reads it as one chunk."""
        assert os.write(self.fd, data) == len(data)


@pytest.fixture
def slow_preview() -> float:
    return 0.0


@pytest.fixture
def app(tmp_path: Path, slow_preview: float) -> Iterator[PtyApp]:
    state_file = tmp_path / "state.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL_", "COLORTERM", "SSH_"))}
    env.update(TERM="xterm-256color", TZ="UTC", TTERM_CONFIG_DIR=str(tmp_path / "cfg"),
               PYTHONPATH=str(ROOT), TTERM_TEST_SLOW_PREVIEW=str(slow_preview))  # fmt: skip
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "tests.tui.pty_app", str(tmp_path), str(state_file)], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    handle = PtyApp(fd, pid, state_file)
    try:
        handle.wait(lambda s: s.get("ready") and s.get("focused") == "watchlist", limit=60)
        handle.settle(0.3)
        yield handle
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def close_bar(app: PtyApp) -> None:
    app.burst(b"\x1b")
    app.wait(lambda s: not s["bar_open"] and s["focused"] == "watchlist", limit=10)


def test_commands_typed_in_one_burst_land_in_the_command_bar(app: PtyApp) -> None:
    watchlist = app.state()["watchlist"]
    app.burst(b":buy 2 MES mkt")
    state = app.wait(lambda s: s["bar_value"] == "buy 2 MES mkt", limit=10)
    assert state["focused"] == "cmd-input"
    state = app.settle()
    assert state["screens"] == ["TradeScreen"], "a key of the command fired a hotkey"
    assert state["orders"] == 0
    assert state["bar_value"] == "buy 2 MES mkt"
    close_bar(app)

    # x is the watchlist's remove key: it must not remove (and rewrite config.toml).
    app.burst(b":xk")
    app.wait(lambda s: s["bar_value"] == "xk", limit=10)
    state = app.settle()
    assert state["watchlist"] == watchlist
    assert state["screens"] == ["TradeScreen"]
    close_bar(app)

    # Every letter here is a watchlist hotkey when the watchlist has focus (b, s, x, a, o, j, k, g).
    text = b"buy 1 MES stp 5010 lmt 5011 gtc tp 8 sl 16 in FUT50K"
    app.burst(b":" + text)
    app.wait(lambda s: s["bar_value"] == text.decode(), limit=10)
    state = app.settle()
    assert state["screens"] == ["TradeScreen"]
    assert state["orders"] == 0
    assert state["watchlist"] == watchlist
    # Every key's handling finished on its own: none waited for the stall watchdog.
    assert state["keys"] > len(text) and state["stalled"] == 0


def test_a_burst_through_focus_changes_keeps_every_key(app: PtyApp) -> None:
    # F3 goes to the ticket's symbol field, Tab twice to the quantity (past the quote line and
    # the side), and the 5 must land there.
    app.burst(b"\x1bOR\t\t5")
    state = app.wait(lambda s: s["focused"] == "t-qty" and s["ticket"].get("t-qty") == "5", limit=10)
    assert state["screens"] == ["TradeScreen"]
    assert state["orders"] == 0


def test_keys_typed_ahead_never_answer_the_confirmation(app: PtyApp) -> None:
    # The command, its Enter, then more Enters and a y in the same burst: one confirmation shows,
    # and nothing typed before it was on screen answers it.
    app.burst(b":buy 1 MES mkt\r\r\ry\r")
    state = app.wait(lambda s: s["screens"][-1] == "ConfirmDialog", limit=10)
    state = app.settle(1.0)
    assert state["screens"] == ["TradeScreen", "ConfirmDialog"], str(state)
    assert state["orders"] == 0
    # A key pressed now, with the dialog on screen, is an answer.
    app.burst(b"n")
    state = app.wait(lambda s: s["screens"] == ["TradeScreen"] and s["focused"] == "watchlist", limit=10)
    assert state["orders"] == 0

    # A hotkey and a typed-ahead y: the y came before the question, so it is not the answer.
    app.burst(b"by")
    app.wait(lambda s: s["screens"][-1] == "ConfirmDialog", limit=10)
    state = app.settle(1.0)
    assert state["orders"] == 0
    app.burst(b"y")
    state = app.wait(lambda s: s["orders"] == 1, limit=10)
    assert state["screens"] == ["TradeScreen"]


def test_keys_after_a_hotkey_reach_what_it_opens(app: PtyApp) -> None:
    # a opens the add-symbol prompt (from a worker); the rest of the burst is the symbol and its
    # Enter. Before, "A" and "M" went to the watchlist (s, x, b would have been hotkeys there).
    app.burst(b"aAMD\r")
    state = app.wait(lambda s: "AMD" in s["watchlist"], limit=10)
    assert state["screens"] == ["TradeScreen"] and state["orders"] == 0
    app.wait(lambda s: s["focused"] == "watchlist", limit=10)
    # Enter loads the ticket and moves there: what follows is typed into the symbol field.
    app.burst(b"\rNQ1!")
    state = app.wait(lambda s: s["ticket"].get("t-symbol") == "NQ1!", limit=10)
    assert state["focused"] == "t-symbol" and state["orders"] == 0 and state["screens"] == ["TradeScreen"]
    assert state["stalled"] == 0


@pytest.mark.parametrize("slow_preview", [1.5])
def test_keys_wait_for_the_confirmation_and_the_kill_switch_does_not(app: PtyApp) -> None:
    # The pre-trade check takes 1.5 s. A j typed after the buy key must not move the watchlist
    # under the order being prepared; it waits for the confirmation (which ignores it).
    app.burst(b"bj")
    state = app.wait(lambda s: s["screens"][-1] == "ConfirmDialog", limit=10)
    # The j is handled by the dialog once it is up (how soon depends on the machine's load).
    app.wait(lambda s: s["dropped"] == ["j"], limit=5)
    state = app.settle(0.5)
    assert state["cursor"] == 0 and state["dropped"] == ["j"] and state["orders"] == 0
    app.burst(b"n")
    app.wait(lambda s: s["screens"] == ["TradeScreen"] and s["focused"] == "watchlist", limit=10)
    # The kill switch pressed while an order's check is still running comes up at once.
    app.burst(b"b")
    app.settle(0.3)
    app.burst(b"\x0b")  # ctrl+k
    state = app.wait(lambda s: s["dialog"] == "KILL SWITCH", limit=1.0)
    assert state["screens"] == ["TradeScreen", "ConfirmDialog"]  # before the order's confirmation


def test_dom_keys_in_a_burst_never_trade_from_a_text_field(app: PtyApp) -> None:
    # d opens the ladder (from a worker): the keys typed right after it move its cursor.
    app.burst(b"dkk")
    state = app.wait(lambda s: s["focused"] == "dom" and s["dom"] and s["dom"]["cursor"] == s["dom"]["market"] + 2,
                     limit=10)  # fmt: skip
    assert state["screens"] == ["TradeScreen"] and state["orders"] == 0
    # With the ladder focused, a command typed in one burst lands in the command bar: b, s, B, S,
    # x, m, f, r, e, [, ], 1-4 are ladder keys there, and none of them may act.
    text = b"b s B S x m f r e [ ] 1 2 3 4 + -"
    app.burst(b":" + text)
    app.wait(lambda s: s["bar_value"] == text.decode(), limit=10)
    state = app.settle()
    assert state["screens"] == ["TradeScreen"], "a key of the command fired a ladder key"
    assert state["orders"] == 0 and state["dom"]["quantity"] == 1 and state["dom"]["moving"] is None
    app.burst(b"\x1b")
    state = app.wait(lambda s: not s["bar_open"] and s["focused"] == "dom", limit=10)
    # In the ticket's symbol field the same letters are text.
    app.burst(b"\x1bOR" + b"bsBSxmfre[]")
    state = app.wait(lambda s: s["ticket"].get("t-symbol", "").endswith("bsBSxmfre[]"), limit=10)
    state = app.settle()
    assert state["focused"] == "t-symbol" and state["orders"] == 0 and state["screens"] == ["TradeScreen"]
    assert state["stalled"] == 0, state["stalled_keys"]


def test_a_ladder_order_and_typed_ahead_keys(app: PtyApp) -> None:
    # The ladder opens with its cursor on the ask; j twice goes one tick under the bid, b buys a
    # limit there: one confirmation, and the y typed with it is dropped, not an answer.
    app.burst(b"d")
    app.wait(lambda s: s["focused"] == "dom" and s["dom"], limit=10)
    app.burst(b"jjby")
    state = app.wait(lambda s: s["screens"][-1] == "ConfirmDialog", limit=10)
    state = app.settle(1.0)
    assert state["orders"] == 0 and state["screens"] == ["TradeScreen", "ConfirmDialog"]
    app.burst(b"y")
    state = app.wait(lambda s: s["orders"] == 1 and s["screens"] == ["TradeScreen"], limit=10)


def test_an_alert_typed_in_one_burst_on_the_alerts_screen(app: PtyApp) -> None:
    """a opens the new-alert prompt; every key after it is text there (x would remove, e edit,
    q close on the alerts screen), and the command bar's alert verb keeps its keys too."""
    app.burst(b":alert MES > 5001\r")
    app.wait(lambda s: s["alerts"] == ["MES (MESZ6) last > 5001.00"], limit=10)
    app.wait(lambda s: not s["bar_open"], limit=10)
    app.burst(b":alerts\r")
    app.wait(lambda s: s["screens"][-1] == "AlertsScreen", limit=10)
    app.burst(b"aMES bid < 4990 note axe quote\r")
    state = app.wait(lambda s: len(s["alerts"]) == 2, limit=10)
    assert state["alerts"] == ["MES (MESZ6) bid < 4990.00 (axe quote)", "MES (MESZ6) last > 5001.00"]
    state = app.settle()
    assert state["screens"] == ["TradeScreen", "AlertsScreen"] and len(state["alerts"]) == 2
    assert state["orders"] == 0 and state["stalled"] == 0, state["stalled_keys"]
