"""Data and config dirs are 0700 and every file in them 0600, whatever the umask (issue 10, item 13).

The journal, the stores (and their SQLite -wal/-shm files), the log, the lock file, config.toml
and secrets.toml hold account numbers, positions and orders.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hub_support import hub_settings
from tterm.config import load_settings, save_secret, save_settings
from tterm.core.journal import Journal
from tterm.datalock import DataDirLock
from tterm.hub.service import Hub
from tterm.logs import setup_logging
from tterm.runtime import build_engine


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """Every directory and file under ``root`` (itself included) -> its permission bits."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
    return out


def loose(root: Path) -> dict[str, str]:
    """What is not private under ``root``: dirs not 0700, files not 0600."""
    bad = {}
    for name, mode in modes(root).items():
        want = 0o700 if (root / name).is_dir() else 0o600
        if mode != want:
            bad[name] = f"{mode:04o}"
    return bad


async def test_everything_tterm_creates_is_private_under_umask_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    conf, data = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    monkeypatch.setenv("TTERM_DATA_DIR", str(data))
    settings = load_settings(create=True)  # writes config.toml
    save_settings(settings)
    save_secret("hub", "webhook_secret", "modes-test-hook-1")
    lock = DataDirLock(data)
    lock.acquire("hub", "tterm hub")
    setup_logging(data)
    logging.getLogger("tterm.test").warning("a line in the log")
    engine = build_engine(settings, scripted=True)
    await engine.start()
    hub = Hub(engine, hub_settings(), data_dir=data, webhook_secret="modes-test-hook-1", api_token=None)
    await hub.start("127.0.0.1", 0)
    try:
        engine.journal.record("notice", {"text": "hello"})
        engine.journal.flush()
        names = set(modes(data))
        assert {"journal.sqlite3", "journal.sqlite3-wal", "paper.sqlite3", "hub.sqlite3", "tterm.log"} <= names
        assert "tterm.lock" in names and any(n.endswith("-shm") for n in names)
        assert loose(data) == {}  # while running: the -wal and -shm files too
    finally:
        await hub.stop()
        await engine.stop()
        engine.journal.close()
        lock.release()
        for handler in logging.getLogger().handlers[:]:
            if getattr(handler, "_tterm_handler", False):
                logging.getLogger().removeHandler(handler)
                handler.close()
    assert loose(data) == {}
    assert {"config.toml", "secrets.toml"} <= set(modes(conf))
    assert loose(conf) == {}


def test_an_older_tterms_readable_files_are_tightened(tmp_path: Path, permissive_umask: None) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    with Journal(data / "journal.sqlite3") as j:
        j.record("notice", {"text": "old"})
    for name in ("journal.sqlite3", "tterm.log"):
        (data / name).touch()
        os.chmod(data / name, 0o644)
    (data / "journal.sqlite3-wal").touch()
    os.chmod(data / "journal.sqlite3-wal", 0o644)
    with DataDirLock(data) as lock:
        lock.acquire("terminal")  # the owner makes its dir private
        assert loose(data) == {}
    os.chmod(data / "journal.sqlite3", 0o644)
    Journal(data / "journal.sqlite3").close()  # and every store tightens its file when it opens it
    assert loose(data) == {}


def test_the_program_runs_with_a_private_umask(tmp_path: Path) -> None:
    """Run as ``tterm``, the process keeps its umask's bits and adds 077, so a file some library
    creates on its own is private too."""
    code = (
        "import os, sys; sys.argv = ['tterm', 'profiles']; from tterm import cli; cli.main(); print(oct(os.umask(0)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.umask(0o002),  # a child with a permissive umask
        env={**os.environ, "TTERM_CONFIG_DIR": str(tmp_path / "c"), "TTERM_DATA_DIR": str(tmp_path / "d")},
    ).stdout
    assert out.strip().splitlines()[-1] == "0o77"
