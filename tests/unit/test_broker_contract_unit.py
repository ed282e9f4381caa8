"""The contract's own pieces: NotSupported wording, Capabilities in words."""

from __future__ import annotations

from tterm.core.broker import Capabilities, NotSupported
from tterm.core.models import OrderType, Timeframe


def test_not_supported_names_the_broker_and_the_verb_and_never_left() -> None:
    exc = NotSupported("tv", "option chains")
    assert str(exc) == "not supported by tv: option chains" and exc.sent is False
    assert str(NotSupported("tv", "bars", "no chart feed")) == "not supported by tv: bars (no chart feed)"


def test_capabilities_describe_what_is_native() -> None:
    plain = Capabilities(brackets=False, oco=False, client_order_id_lookup=False, interactive_login=True)
    words = plain.describe()
    assert words.startswith("futures; orders market limit stop stop-limit;")
    assert "no native brackets or groups (tterm links them)" in words
    assert "no lookup by tterm's order id (never re-sent)" in words and words.endswith("browser login")
    rich = Capabilities(
        equities=True,
        options=True,
        otoco=True,
        multi_leg=True,
        order_types=frozenset(OrderType),
        bars=True,
        timeframes=frozenset({Timeframe.M1, Timeframe.D1}),
        depth=True,
        option_chain=True,
    )
    assert "futures equities options; orders market limit stop stop-limit trailing-stop;" in rich.describe()
    assert "native brackets OCO OTOCO multi-leg; data: bars 1m/1d, depth, option chains" in rich.describe()
