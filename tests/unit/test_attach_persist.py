"""An attached terminal (``tterm attach``, or plain ``tterm`` on a hub's data dir) saves the theme
and watchlist edits to its own config file and reads user themes from its config dir, as the
embedded terminal does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tterm import cli
from tterm.config import load_settings


def test_the_attached_terminal_saves_to_its_config(tmp_path: Path, monkeypatch) -> None:
    from tterm.hub.remote import RemoteEngineClient
    from tterm.tui.app import TtermApp

    async def nothing(self: Any, *a: Any, **kw: Any) -> None:
        return None

    monkeypatch.setattr(RemoteEngineClient, "connect", nothing)
    monkeypatch.setattr(RemoteEngineClient, "close", nothing)
    monkeypatch.setattr(cli, "setup_logging", lambda *a, **kw: None)
    ran: list[TtermApp] = []
    monkeypatch.setattr(TtermApp, "run", lambda self, **kw: ran.append(self) or 0)
    config = tmp_path / "cfg" / "config.toml"
    config.parent.mkdir()
    config.write_text('# mine\n[general]\ntheme = "tterm-amber"\n')
    assert cli.attach_terminal(load_settings(config), "ws://127.0.0.1:9/ws", "token", config) == 0
    (app,) = ran
    assert app.config_dir == config.parent
    assert app.persist is not None
    app.persist({("general", "theme"): "tterm-cb"})
    assert load_settings(config).general.theme == "tterm-cb"
    assert config.read_text().startswith("# mine\n")
