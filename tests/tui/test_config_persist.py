"""The theme chosen in the terminal survives a restart, and watchlist edits from the terminal
keep the user's comments and layout in config.toml."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import make_app, wait_for
from tterm.config import edit_config, load_settings
from tterm.tui import app as app_module

CONFIG = """\
# Desk setup: keep this comment.
[general]
theme = "tterm-amber"  # changed from the terminal

[watchlists]
# the index futures I trade
futures = ["MES1!", "ES1!", "MNQ1!"]
stocks = ["AAPL", "NVDA"]
"""


async def test_the_chosen_theme_is_there_after_a_restart(engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "THEME_SAVE_DELAY", 0.05)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    settings = load_settings(path)
    app = make_app(engine, settings, persist=lambda edits: edit_config(edits, path))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        assert app.theme == "tterm-amber"
        await pilot.press("colon", *"theme tterm-light", "enter")
        await wait_for(lambda: 'theme = "tterm-light"' in path.read_text(), pilot)
    text = path.read_text()
    assert "# Desk setup: keep this comment." in text and "# changed from the terminal" in text
    # The restart: a new terminal on the same config file.
    again = make_app(engine, load_settings(path))
    async with again.run_test(size=(120, 36)) as pilot:
        await wait_for(again.ready.is_set, pilot)
        assert again.theme == "tterm-light"


async def test_a_theme_only_previewed_is_not_saved(engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "THEME_SAVE_DELAY", 0.2)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    writes: list[object] = []
    app = make_app(engine, load_settings(path), persist=lambda edits: (writes.append(edits), edit_config(edits, path)))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        app.theme = "tterm-cb"  # the palette's picker passing over a theme...
        app.theme = "tterm-amber"  # ...and the user cancelling back to the one they had
        await pilot.pause(0.4)
    assert writes == []
    assert path.read_text() == CONFIG


async def test_watchlist_edits_keep_the_comments(engine, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    app = make_app(engine, load_settings(path), persist=lambda edits: edit_config(edits, path))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("colon", *"watch NQ1!", "enter")
        await wait_for(lambda: "NQ1!" in load_settings(path).watchlists["futures"], pilot)
        await pilot.press("colon", *"unwatch ES1!", "enter")
        await wait_for(lambda: "ES1!" not in load_settings(path).watchlists["futures"], pilot)
    text = path.read_text()
    assert "# Desk setup: keep this comment." in text and "# the index futures I trade" in text
    assert load_settings(path).watchlists == {"futures": ["MES1!", "MNQ1!", "NQ1!"], "stocks": ["AAPL", "NVDA"]}
