"""One process owns a data dir (issue 10, item 11), with real processes.

A second ``tterm hub`` refuses, naming the owner; ``tterm flatten`` / ``tterm lock`` go through the
hub that owns the dir; plain ``tterm`` attaches to it; a terminal owner makes every other engine
command refuse; a crashed owner (SIGKILL) leaves the dir free; ``tterm serve`` runs no engine per
browser session: it starts one hub (or reuses the owner) and each session attaches to it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tterm import cli
from tterm.core.journal import Journal
from tterm.datalock import LOCK_FILENAME, DataDirBusy, DataDirLock, read_owner

TOKEN = "owner-test-token-1234567890"
SECRET = "owner-test-secret-1234567890"

CONFIG = """
[paper]
seed = 3
quote_hz = 2.0
symbols = ["MES"]

[risk]
enabled = false

[hub]
host = "127.0.0.1"
port = 0
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TTERM_HUB_API_TOKEN", TOKEN)
    monkeypatch.setenv("TTERM_HUB_WEBHOOK_SECRET", SECRET)
    return tmp_path


def tterm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tterm.cli", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


class Hub:
    """``tterm hub`` as a child process, ready once it prints its address."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tterm.cli", "hub"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.port = 0
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))
                break
        assert self.port, "tterm hub did not start:\n" + "".join(self.lines)
        self._rest = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout or ()), daemon=True)
        self._rest.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@pytest.fixture
def hub(home: Path) -> Iterator[Hub]:
    h = Hub()
    try:
        yield h
    finally:
        h.stop()


# --------------------------------------------------------------------------- the lock itself


def test_a_second_owner_is_refused_and_named(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire("hub", "tterm hub --port 0")
    first.publish(hub_url="ws://127.0.0.1:8787")
    with pytest.raises(DataDirBusy) as info:
        DataDirLock(tmp_path).acquire("terminal")
    owner = info.value.owner
    assert owner is not None and owner.pid == os.getpid() and owner.kind == "hub" and owner.attachable
    assert f"pid {os.getpid()}" in str(info.value) and "tterm hub --port 0" in str(info.value)
    assert "ws://127.0.0.1:8787" in str(info.value)
    first.release()
    assert read_owner(tmp_path) is None  # free again, the old record is not mistaken for an owner
    with DataDirLock(tmp_path) as second:
        second.acquire("terminal", "tterm run")
        again = read_owner(tmp_path)
        assert again is not None and again.kind == "terminal" and not again.attachable


def test_a_crashed_owner_leaves_the_dir_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from tterm.datalock import DataDirLock; "
            f"DataDirLock({str(tmp_path)!r}).acquire('hub', 'tterm hub'); print('held', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DataDirBusy) as info:
            DataDirLock(tmp_path).acquire("terminal")
        assert info.value.owner is not None and info.value.owner.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert (tmp_path / LOCK_FILENAME).exists()  # the record stays behind: the kernel dropped the lock
    assert read_owner(tmp_path) is None
    with DataDirLock(tmp_path) as lock:
        lock.acquire("terminal")
        assert lock.held


# --------------------------------------------------------------------------- a hub owns the dir


def test_a_hub_owns_its_data_dir(home: Path, hub: Hub) -> None:
    owner = read_owner(home / "data")
    assert owner is not None and owner.kind == "hub" and owner.pid == hub.proc.pid
    assert owner.hub_url == hub.url and owner.command == "tterm hub"

    second = tterm("hub")
    assert second.returncode == 1
    assert f"pid {hub.proc.pid}" in second.stderr and "tterm hub" in second.stderr
    assert f"tterm attach {hub.url}" in second.stderr and "Traceback" not in second.stderr

    # flatten and lock go through the hub's API: the hub's own engine acts and journals.
    flat = tterm("flatten", "all")
    assert flat.returncode == 0, flat.stderr
    assert "acting through it" in flat.stdout and "every account in scope is flat" in flat.stdout
    locked = tterm("lock", "paper:FUT50K", "--reason", "through the hub")
    assert locked.returncode == 0, locked.stderr
    assert "locked paper:FUT50K until" in locked.stdout
    with Journal(home / "data" / "journal.sqlite3") as journal:  # a reader beside the hub (WAL)
        locks = [e.data for e in journal.entries(kind="lock")]
    assert [(d["account"], d["by"], d["reason"]) for d in locks] == [("paper:FUT50K", "remote", "through the hub")]
    assert read_owner(home / "data").pid == hub.proc.pid  # type: ignore[union-attr]


def test_plain_tterm_attaches_to_the_hub_that_owns_the_dir(
    home: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    attached: list[tuple[str, str]] = []
    monkeypatch.setattr(cli, "attach_terminal", lambda settings, url, token, *rest: attached.append((url, token)) or 0)
    built: list[object] = []
    monkeypatch.setattr("tterm.runtime.run_terminal", lambda *a, **k: built.append(a))
    assert cli.main([]) == 0
    assert attached == [(hub.url, TOKEN)] and built == []  # no second engine


def test_the_hub_stops_and_the_dir_is_free(home: Path) -> None:
    h = Hub()
    assert h.stop() == 0
    assert read_owner(home / "data") is None


# --------------------------------------------------------------------------- a terminal owns the dir


def test_a_terminal_owner_makes_every_other_engine_command_refuse(home: Path) -> None:
    with DataDirLock(home / "data") as terminal:
        terminal.acquire("terminal", "tterm run")
        for args in (("hub",), ("flatten", "all"), ("lock", "all", "--reason", "x")):
            res = tterm(*args)
            assert res.returncode == 1, (args, res.stdout, res.stderr)
            assert f"in use by tterm run (pid {os.getpid()}" in res.stderr, res.stderr
            assert "Use that terminal" in res.stderr and "Traceback" not in res.stderr
        assert not (home / "data" / "journal.sqlite3").exists()  # nothing opened the books


# --------------------------------------------------------------------------- tterm serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll another process's state (there is no event to wait on across processes)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def _health(port: int) -> dict[str, object] | None:
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def _page(port: int) -> int | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return None


async def _two_sessions(port: int, hub_port: int) -> dict[str, object]:
    """Open two browser sessions (textual-serve websockets) and wait until the hub sees them."""
    import asyncio

    import aiohttp

    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") for _ in range(2)]
        try:
            return await asyncio.to_thread(
                _wait, "two attached sessions", lambda: (h := _health(hub_port)) and h["remote_clients"] == 2 and h
            )
        finally:
            for ws in sockets:
                await ws.close()


def test_serve_starts_one_hub_and_every_session_attaches_to_it(home: Path) -> None:
    import asyncio

    port = _free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "tterm.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        owner = _wait("the hub serve starts", lambda: (o := read_owner(home / "data")) and o.hub_url and o)
        assert owner.kind == "hub" and owner.pid != serve.pid  # a hub child of serve, not serve itself
        hub_port = int(owner.hub_url.rsplit(":", 1)[1])
        _wait("the page", lambda: _page(port))
        # Two browser sessions: both are `tterm attach` to that one hub, and no other engine runs.
        health = asyncio.run(_two_sessions(port, hub_port))
        assert health["accounts"]
        assert read_owner(home / "data").pid == owner.pid  # type: ignore[union-attr]
    finally:
        serve.send_signal(signal.SIGINT)
        err = serve.communicate(timeout=60)[1]
    assert serve.returncode == 0, err
    assert "starting one (tterm hub)" in err and "stopping the hub it started" in err
    assert read_owner(home / "data") is None  # the hub serve started has stopped with it


def test_a_hub_whose_port_is_taken_says_so_and_leaves_the_dir_free(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            assert cli.main(["hub", "--port", str(port)]) == 1
        finally:
            for handler in logging.getLogger().handlers[:]:  # the hub's log handlers, in this process
                if getattr(handler, "_tterm_handler", False):
                    logging.getLogger().removeHandler(handler)
                    handler.close()
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert read_owner(home / "data") is None


def test_plain_tterm_waits_for_a_hub_that_is_still_starting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub connecting its brokers owns the dir before it listens: tterm waits for its address."""
    attached: list[str] = []
    monkeypatch.setattr(cli, "attach_terminal", lambda settings, url, token, *rest: attached.append(url) or 0)
    starting = DataDirLock(home / "data")
    starting.acquire("hub", "tterm hub")
    timer = threading.Timer(0.3, lambda: starting.publish(hub_url="ws://127.0.0.1:8799"))
    timer.start()
    try:
        assert cli.main([]) == 0
    finally:
        timer.join()
        starting.release()
    assert attached == ["ws://127.0.0.1:8799"]
