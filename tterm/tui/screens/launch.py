"""Opening the market screens (chart, tape, chain) from a verb or a watchlist key.

The app calls :func:`open_screen` for ``chart MES 1m`` / ``tape MES`` / ``chain AAPL`` and for the
watchlist's ``c`` / ``t`` / ``n`` keys. The symbol is resolved first (the brokers are asked when
the master lists do not know it), so a bad one is refused with the reason and nothing opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import AssetClass, ModelError, Timeframe
from tterm.tui.market_verbs import ChainCommand, ChartCommand, ScreenCommand, TapeCommand

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp


class ScreenError(Exception):
    """A screen verb that cannot be carried out (unknown symbol, no options on a future...)."""


async def open_screen(app: TtermApp, cmd: ScreenCommand) -> str:
    """Push the screen ``cmd`` asks for; ScreenError says why it cannot open."""
    from tterm.tui.screens.chart import ChartScreen
    from tterm.tui.screens.tape import TapeScreen

    try:
        inst = await app.engine.find_instrument(cmd.symbol)
    except (UnknownSymbol, ModelError, EngineError) as exc:
        raise ScreenError(str(exc)) from None
    tz = app.clock.now_ct().tzinfo
    settings = app.settings.screens
    common: dict[str, Any] = {"settings": settings, "hz": max(4, min(30, app.refresh_hz)), "now": app.wall, "tz": tz}
    state = app.bridge.state
    match cmd:
        case ChartCommand(timeframe=tf):
            timeframe = tf or Timeframe(settings.chart_timeframe)
            app.push_screen(ChartScreen(app.engine, state, inst, timeframe=timeframe, **common))
            return ""
        case TapeCommand(large=large):
            threshold = large or settings.large_for(inst.symbol, inst.root, inst.underlying, inst.asset_class.value)
            app.push_screen(TapeScreen(app.engine, state, inst, large=threshold, **common))
            return ""
        case ChainCommand(expiry=expiry):
            if inst.asset_class is AssetClass.OPTION:
                raise ScreenError(
                    f"{inst.symbol} is an option; ask for the chain of {inst.underlying or 'its underlying'}"
                )
            if inst.asset_class is AssetClass.FUTURE:
                raise ScreenError(
                    f"option chains are for shares and ETFs; {inst.symbol} is a future (its options trade by "
                    f"symbol, e.g. '{inst.symbol} C6800')"
                )
            from tterm.tui.screens.chain import ChainScreen

            app.push_screen(ChainScreen(app.engine, state, inst, expiry=expiry, account=app.account, **common))
            return ""
    raise ScreenError(f"cannot open {cmd!r}")  # pragma: no cover


def command_for(kind: str, symbol: str) -> ScreenCommand:
    """The verb a watchlist key stands for (``c`` chart, ``t`` tape, ``n`` chain)."""
    return {"chart": ChartCommand, "tape": TapeCommand, "chain": ChainCommand}[kind](symbol)


__all__ = ["ScreenError", "command_for", "open_screen"]
