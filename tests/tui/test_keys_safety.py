"""Editing keys win inside text fields; the kill switch stays one key away everywhere else; a
key pressed before a confirmation was on screen never answers it."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from tests.tui.conftest import make_app, wait_for
from tterm.tui.modals.confirm import ConfirmDialog

SIZE = (140, 44)


async def started(app, pilot) -> None:
    await wait_for(app.ready.is_set, pilot)
    await pilot.pause()


def kill_binding_state(app) -> bool | None:
    active = app.active_bindings.get("ctrl+k")
    assert active is not None and active.binding.id == "app.kill_switch"
    return active.enabled


async def test_ctrl_k_in_a_text_field_deletes_to_the_end_of_the_line(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f3")
        symbol = app.screen.query_one("#t-symbol", Input)
        await wait_for(lambda: app.focused is symbol, pilot)
        symbol.value = "MES1!"
        symbol.cursor_position = 3
        await pilot.press("ctrl+k")
        await pilot.pause()
        assert symbol.value == "MES"
        assert not isinstance(app.screen, ConfirmDialog)
        # The footer shows the kill switch greyed out while a text field has the key.
        assert kill_binding_state(app) is False

        # The command bar too.
        await pilot.press("escape", "f2", "colon")
        bar = app.command_bar.input
        await wait_for(lambda: app.focused is bar, pilot)
        await pilot.press(*"flatten all", "home", "right", "right", "right", "right", "right", "right", "right")
        await pilot.press("ctrl+k")
        await pilot.pause()
        assert bar.value == "flatten"
        assert not isinstance(app.screen, ConfirmDialog)


async def test_ctrl_k_elsewhere_is_the_kill_switch(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.focused is app.grid
        assert kill_binding_state(app) is True
        await pilot.press("ctrl+k")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        assert app.screen.title_text == "KILL SWITCH"
        await pilot.press("n")
        await wait_for(lambda: not isinstance(app.screen, ConfirmDialog), pilot)
        # From the orders table as well.
        await pilot.press("f4", "ctrl+k")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("n")


async def test_a_remapped_kill_switch_on_a_key_fields_do_not_use_works_in_them(engine, settings) -> None:
    settings.keymap = {"app.kill_switch": "ctrl+k,f12"}
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f3")
        await wait_for(lambda: isinstance(app.focused, Input), pilot)
        await pilot.press("f12")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("n")


async def test_a_key_pressed_before_the_confirmation_showed_is_not_its_answer(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        early = events.Key("y", "y")  # pressed now...
        results: list[bool | None] = []
        app.push_screen(ConfirmDialog("Confirm order", "BUY 1 MESZ6 at market"), callback=results.append)
        await wait_for(lambda: getattr(app.focused, "id", None) == "yes", pilot)
        app.post_message(early)  # ...and delivered once the dialog is up
        await pilot.pause(0.1)
        assert results == []
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.dropped == ["y"]
        await pilot.press("y")  # pressed with the dialog on screen: the answer
        await wait_for(lambda: results == [True], pilot)
