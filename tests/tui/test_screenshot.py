"""The palette's Screenshot saves to the data dir and says where; when it cannot, it says which
folder and why (Textual's own said only "Failed to save screenshot" when ~/Downloads was missing)."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import make_app, wait_for


def screenshot_command(app):
    return next(c for c in app.get_system_commands(app.screen) if c.title == "Screenshot")


async def test_the_screenshot_goes_to_the_data_dir(engine, settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/Downloads, as on a fresh server
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    app = make_app(engine, settings)
    toasts: list[tuple[str, str]] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        app.notify = lambda message, *a, severity="information", **kw: toasts.append((str(message), severity))  # type: ignore[method-assign]
        command = screenshot_command(app)
        assert str(tmp_path / "data" / "screenshots") in command.help
        command.callback()
        await wait_for(lambda: any("screenshot" in t for t, _ in toasts), pilot)
        shots = list((tmp_path / "data" / "screenshots").glob("tterm-*.svg"))
        assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
        assert toasts[-1] == (f"screenshot saved to {shots[0]}", "information")


async def test_a_screenshot_that_cannot_be_saved_says_where_and_why(engine, settings, tmp_path: Path,
                                                                    monkeypatch) -> None:  # fmt: skip
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    monkeypatch.setenv("TTERM_DATA_DIR", str(blocker))
    app = make_app(engine, settings)
    toasts: list[tuple[str, str]] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        app.notify = lambda message, *a, severity="information", **kw: toasts.append((str(message), severity))  # type: ignore[method-assign]
        screenshot_command(app).callback()
        await wait_for(lambda: any("screenshot" in t for t, _ in toasts), pilot)
        message, severity = toasts[-1]
        assert severity == "error"
        assert message.startswith("screenshot not saved: cannot write ")
        assert str(blocker) in message and ("Not a directory" in message or "exists" in message), message
