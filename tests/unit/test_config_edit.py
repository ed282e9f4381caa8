"""Edits from the terminal change only their keys in config.toml: the user's comments, order and
layout stay; a bad edit changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tterm.config import ConfigError, IfMissing, edit_config, load_settings

CONFIG = """\
# My trading setup. Do not lose this comment.

[general]
theme = "tterm-amber"   # the default look
refresh_hz = 20

# Lists I watch, in my order.
[watchlists]
futures = [
    "MES1!",  # micro S&P
    "MNQ1!",
]
stocks = ["AAPL", "NVDA"]

[paper]
seed = 3
"""


def test_an_edit_keeps_the_comments_and_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    edit_config({("watchlists", "stocks"): ["AAPL", "NVDA", "AMD"], ("general", "theme"): "tterm-light"}, path)
    text = path.read_text()
    assert "# My trading setup. Do not lose this comment." in text
    assert "# Lists I watch, in my order." in text
    assert '"MES1!",  # micro S&P' in text  # an untouched list keeps its inline comments
    assert "refresh_hz = 20" in text and "seed = 3" in text
    assert 'stocks = ["AAPL", "NVDA", "AMD"]' in text
    assert 'theme = "tterm-light"' in text and "# the default look" in text
    settings = load_settings(path)
    assert settings.general.theme == "tterm-light"
    assert settings.watchlists["stocks"] == ["AAPL", "NVDA", "AMD"]
    assert settings.watchlists["futures"] == ["MES1!", "MNQ1!"]


def test_a_list_written_one_per_line_stays_that_way(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    edit_config({("watchlists", "futures"): ["MES1!", "MNQ1!", "MGC1!"]}, path)
    text = path.read_text()
    assert '    "MGC1!",\n' in text
    assert load_settings(path).watchlists["futures"] == ["MES1!", "MNQ1!", "MGC1!"]


def test_missing_tables_and_files_are_created(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# only a comment\n")
    edit_config({("general", "theme"): "tterm-cb"}, path)
    assert path.read_text().startswith("# only a comment\n")
    assert load_settings(path).general.theme == "tterm-cb"
    fresh = tmp_path / "new" / "config.toml"
    edit_config({("watchlists", "mine"): ["ES1!"]}, fresh)
    assert load_settings(fresh).watchlists["mine"] == ["ES1!"]


def test_a_bad_edit_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError, match="refresh_hz"):
        edit_config({("general", "refresh_hz"): 0}, path)
    assert path.read_text() == CONFIG


def test_lists_the_file_left_to_the_defaults_are_written_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# defaults for the lists\n[paper]\nseed = 1\n")
    lists = load_settings(path).watchlists
    assert set(lists) == {"futures", "stocks"}
    edit_config({("watchlists",): IfMissing(lists), ("watchlists", "futures"): [*lists["futures"], "NVDA"]}, path)
    again = load_settings(path).watchlists
    assert again["stocks"] == lists["stocks"] and again["futures"][-1] == "NVDA"


def test_an_edit_keeps_what_another_terminal_wrote_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    stale = load_settings(path).watchlists  # this terminal's view
    edit_config({("watchlists", "futures"): ["MES1!", "MNQ1!", "NQ1!"]}, path)  # another terminal
    edit_config({("watchlists",): IfMissing(stale), ("watchlists", "stocks"): ["AAPL"]}, path)
    lists = load_settings(path).watchlists
    assert lists == {"futures": ["MES1!", "MNQ1!", "NQ1!"], "stocks": ["AAPL"]}


def test_unchanged_keys_are_left_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    lists = load_settings(path).watchlists
    edit_config({("watchlists",): {**lists, "stocks": ["AAPL"]}}, path)  # a whole table, one list changed
    text = path.read_text()
    assert '"MES1!",  # micro S&P' in text  # futures did not change: its comments stay
    assert 'stocks = ["AAPL"]' in text


@pytest.mark.skipif(not hasattr(__import__("os"), "fchmod"), reason="POSIX file modes")
def test_the_edited_file_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    edit_config({("general", "theme"): "tterm-cb"}, path)
    assert path.stat().st_mode & 0o777 == 0o600
