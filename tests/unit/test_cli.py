"""The tterm command: --version, doctor, journal export, run wiring, and config errors (exit 2)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tterm import __version__, cli
from tterm.config import config_path, journal_path, save_secret
from tterm.core.journal import Journal

TERMINAL_VARS = ("COLORTERM", "TERM", "NO_COLOR", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    conf, data = tmp_path / "conf", tmp_path / "data"
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    monkeypatch.setenv("TTERM_DATA_DIR", str(data))
    for var in list(os.environ):
        if var.startswith("TTERM_") and var not in ("TTERM_CONFIG_DIR", "TTERM_DATA_DIR"):
            monkeypatch.delenv(var)
    for var in TERMINAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "132")
    monkeypatch.setenv("LINES", "43")
    return conf, data


def _bad_config() -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[general]\nrefresh_hz = 0\n")
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tterm {__version__}"


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for word in ("run", "doctor", "journal", "--paper-seed", "--config", "--version"):
        assert word in out


# --------------------------------------------------------------------------- run


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """A stand-in for tterm.runtime that records how the terminal was asked to run."""
    calls: list[dict[str, object]] = []
    module = types.ModuleType("tterm.runtime")

    def run_terminal(
        settings: object, *, paper_seed: int | None = None, ssh: bool | None = None, config_file: object = None
    ) -> None:
        calls.append({"settings": settings, "paper_seed": paper_seed, "ssh": ssh, "config_file": config_file})

    module.run_terminal = run_terminal  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tterm.runtime", module)
    return calls


@pytest.mark.parametrize("argv", [[], ["run"], ["--paper-seed", "7"], ["run", "--paper-seed", "7"]])
def test_run_calls_the_runtime(argv: list[str], fake_runtime: list[dict[str, object]]) -> None:
    assert cli.main(argv) == 0
    assert len(fake_runtime) == 1
    assert fake_runtime[0]["paper_seed"] == (7 if "7" in argv else None)
    assert fake_runtime[0]["ssh"] is False
    assert config_path().exists()  # first run writes the defaults


def test_run_seed_from_config_and_ssh(fake_runtime: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[paper]\nseed = 11\n")
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 5555 10.0.0.1 22")
    assert cli.main(["run"]) == 0
    assert cli.main(["--paper-seed", "3"]) == 0
    assert [(c["paper_seed"], c["ssh"]) for c in fake_runtime] == [(11, True), (3, True)]
    path.write_text('[general]\nssh_profile = "off"\n')
    assert cli.main([]) == 0
    assert fake_runtime[-1]["ssh"] is False


def test_bad_seed_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--paper-seed", "-1"])
    assert info.value.code == 2
    assert "--paper-seed: must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["run"], ["journal", "export", "--format", "csv"], ["--config", "{bad}", "run"], ["run", "--config", "{bad}"]],
)
def test_bad_config_exits_2_with_message(
    argv: list[str], capsys: pytest.CaptureFixture[str], fake_runtime: list[dict[str, object]], tmp_path: Path
) -> None:
    bad = _bad_config()
    if "{bad}" in argv:
        other = tmp_path / "other.toml"
        other.write_text(bad.read_text())
        bad.unlink()
        bad = other
        argv = [str(other) if a == "{bad}" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: general.refresh_hz: must be at least 1 (got 0)" in err
    assert "Traceback" not in err
    assert fake_runtime == []  # nothing started half-configured


# --------------------------------------------------------------------------- doctor


def test_doctor_reports_missing_colorterm_over_ssh(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dirs: tuple[Path, Path]
) -> None:
    conf, data = dirs
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 5555 10.0.0.1 22")
    monkeypatch.setenv("TERM", "xterm-256color")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert str(conf / "config.toml") in out
    assert str(data) in out and str(data / "journal.sqlite3") in out
    assert "paper (embedded, 2 accounts)" in out
    assert "paper:FUT50K" in out and "paper:CASH" in out
    assert "256 (COLORTERM=(unset), TERM=xterm-256color)" in out
    assert "132x43" in out
    assert "ssh       yes" in out
    assert "COLORTERM is not set over SSH" in out
    assert "fix: export COLORTERM=truecolor" in out
    assert not config_path().exists()  # doctor looks, it does not write


def test_doctor_all_good(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.setenv("TERM", "xterm-256color")
    with Journal(journal_path()) as j:
        j.record("notice", {"text": "hello"})
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "No problems found." in out
    assert "truecolor" in out and "ssh       no" in out
    assert "journal.sqlite3 (" in out and "not created yet)" not in out.split("journal")[1].splitlines()[0]


def test_doctor_finds_bad_config_perms_and_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLORTERM", "truecolor")
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        '[brokers.tv-demo]\ntype = "tradovate"\nenabled = true\nusername = "me"\n'
        '[brokers.tv-other]\ntype = "tradovate"\nenabled = true\n'
    )
    save_secret("tv-demo", "password", "pw-123456789")
    monkeypatch.setenv("TTERM_TV_DEMO_CID", "42")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "tv-demo (tradovate, demo)" in out and (
        "adapters  projectx (ProjectX Gateway (TopstepX)), schwab (Schwab), tastytrade (Tastytrade), "
        "tradovate (Tradovate)" in out
    )
    # What each broker has natively, so a user knows what tterm emulates or refuses there.
    assert "has       paper: futures equities options; orders market limit stop stop-limit trailing-stop" in out
    tv = next(line for line in out.splitlines() if "tv-demo: " in line)
    assert "tv-demo: futures; orders market limit stop stop-limit;" in tv and "option chains" not in tv
    assert "broker 'tv-demo' is enabled but lacks secret 'sec'" in out
    assert "TTERM_TV_DEMO_SEC" in out
    assert "lacks secret 'cid'" not in out.split("tv-other")[0]  # found in the environment
    assert "broker 'tv-other' is enabled but lacks brokers.tv-other.username is empty" in out
    assert "pw-123456789" not in out

    # A broker type with no adapter is refused, naming the types that exist.
    path.write_text('[brokers.ib]\ntype = "ib"\nenabled = true\n')
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "brokers.ib.type: no adapter for broker type 'ib';" in out
    assert "broker types with an adapter: 'projectx', 'schwab', 'tastytrade', 'tradovate'" in out

    secrets = path.parent / "secrets.toml"
    secrets.chmod(0o640)
    path.write_text("[general]\nrefresh_hz = 99\n")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "general.refresh_hz: must be at most 60 (got 99)" in out
    assert f"fix: chmod 600 {secrets}" in out
    assert "(mode 0640, UNSAFE)" in out


def test_start_up_refuses_a_broker_without_its_credentials_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[brokers.tv]\ntype = "tradovate"\nenabled = true\nusername = "me"\n')
    save_secret("tv", "password", "pw-123456789")
    assert cli.main(["hub", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "broker 'tv': missing credentials cid, sec" in err and "TTERM_TV_CID" in err
    assert "pw-123456789" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "depth"),
    [
        ({"COLORTERM": "truecolor", "TERM": "xterm"}, "truecolor"),
        ({"COLORTERM": "24bit"}, "truecolor"),
        ({"TERM": "xterm-256color"}, "256"),
        ({"TERM": "screen-256color"}, "256"),
        ({"TERM": "xterm-kitty"}, "256"),
        ({"TERM": "xterm"}, "16"),
        ({}, "16"),
        ({"TERM": "dumb", "COLORTERM": "truecolor"}, "none"),
        ({"NO_COLOR": "1", "COLORTERM": "truecolor"}, "none"),
        ({"NO_COLOR": "", "TERM": "xterm-256color"}, "256"),
    ],
)
def test_color_depth(env: dict[str, str], depth: str) -> None:
    assert cli.detect_color_depth(env) == depth


def test_ssh_detection() -> None:
    assert cli.detect_ssh({"SSH_CONNECTION": "a b c d"})
    assert cli.detect_ssh({"SSH_TTY": "/dev/pts/1"})
    assert not cli.detect_ssh({"TERM": "xterm"})


# --------------------------------------------------------------------------- journal export


def _fill_journal() -> None:
    old = datetime(2020, 1, 2, 15, tzinfo=UTC)
    with Journal(journal_path()) as j:
        j.record("order_request", {"symbol": "MESM6", "quantity": 1}, account="paper:FUT50K", ref="tt1", ts=old)
        j.record("fill", {"symbol": "MESM6", "price": "5000.25"}, account="paper:FUT50K", ref="tt1")
        j.record("connection", {"state": "connected"}, ref="paper")


def test_journal_export_csv_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    _fill_journal()
    assert cli.main(["journal", "export", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["kind"] for r in rows] == ["order_request", "fill", "connection"]
    assert json.loads(rows[1]["data"]) == {"symbol": "MESM6", "price": "5000.25"}
    assert "exported 3 journal rows to stdout" in captured.err


def test_journal_export_jsonl_to_file_with_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill_journal()
    out = tmp_path / "out" / "journal.jsonl"
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    argv = ["journal", "export", "--format", "jsonl", "--since", since, "--kind", "fill", "order_request"]
    assert cli.main([*argv, "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["kind"], d["ref"], d["data"]["price"]) for d in lines] == [("fill", "tt1", "5000.25")]
    assert capsys.readouterr().out == ""

    assert cli.main(["journal", "export", "--format", "jsonl", "--kind", "order_request", "-o", str(out)]) == 0
    assert [json.loads(line)["data"] for line in out.read_text().splitlines()] == [{"symbol": "MESM6", "quantity": 1}]
    assert [p.name for p in out.parent.iterdir()] == ["journal.jsonl"]  # no temp file left


def test_journal_export_without_a_journal(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["journal", "export", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "id,ts,kind,account,ref,data\n"
    assert "no journal yet" in captured.err
    assert not journal_path().exists() and not config_path().exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["journal", "export"], "--format"),
        (["journal", "export", "--format", "csv", "--kind", "fills"], "invalid choice: 'fills'"),
        (["journal", "export", "--format", "csv", "--since", "yesterday"], "expected a date YYYY-MM-DD"),
        (["journal"], "required"),
    ],
)
def test_journal_export_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_subcommand_is_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Later issues add hub/attach/login/replay/serve by appending one add_<name> function."""

    def add_hello(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
        p = sub.add_parser("hello", parents=[common])
        p.set_defaults(handler=lambda args: 5 if args.config is None else 6)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, add_hello])
    assert cli.main(["hello"]) == 5
    assert cli.main(["hello", "--config", "x.toml"]) == 6
    assert cli.main(["--config", "x.toml", "hello"]) == 6


def test_journal_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``tterm journal export ... | head -2``: the reader leaves early; no "Exception ignored"."""
    import subprocess

    with Journal(journal_path()) as j:
        for i in range(5000):  # well past a pipe's buffer
            j.record("notice", {"text": "x" * 100, "i": i})
    for fmt in ("jsonl", "csv"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tterm.cli", "journal", "export", "--format", fmt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        head = [proc.stdout.readline(), proc.stdout.readline()]
        proc.stdout.close()  # what head does after its two lines
        err = proc.stderr.read().decode()
        assert proc.wait(30) == 0, err
        assert all(head), head
        assert "Exception ignored" not in err and "Traceback" not in err, err
