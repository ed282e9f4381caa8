"""The screen-only verbs (dom, reverse, breakeven, trail): every form, and exact errors."""

from __future__ import annotations

import pytest

from tterm.tui import parse as p
from tterm.tui.parse import describe
from tterm.tui.parse import parse as parse_any


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dom MES", p.DomCommand("MES")),
        (":ladder es1!", p.DomCommand("ES1!")),
        ("dom close", p.DomCommand(None)),
        ("reverse MES", p.ReverseCommand("MES")),
        ("flip NQ in CASH", p.ReverseCommand("NQ", "CASH")),
        ("be MES", p.BreakevenCommand("MES")),
        ("trail MES 8", p.TrailCommand("MES", 8)),
        ("trail MES 8t in FUT50K", p.TrailCommand("MES", 8, "FUT50K")),
        ("trailing mes 12ticks", p.TrailCommand("MES", 12)),
    ],
)
def test_screen_verbs_parse(text: str, expected: object) -> None:
    assert parse_any(text) == expected
    assert describe(parse_any(text))  # plain words for the palette


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("dom", "dom: missing symbol, e.g. 'dom MES'"),
        ("dom 123", "dom: '123' is not a symbol"),
        ("dom MES ES", "dom: unexpected 'ES'"),
        ("dom MES in CASH", "dom: the ladder trades the current account; switch with 'account NAME'"),
        ("reverse", "reverse: missing symbol, e.g. 'reverse MES'"),
        ("breakeven MES now", "breakeven: unexpected 'now'"),
        ("trail MES", "trail: missing the distance in ticks, e.g. 'trail MES 8'"),
        ("trail MES 0", "trail: '0' is not a distance in ticks (1 to 10,000)"),
        ("trail MES 99999999999999", "trail: '99999999999999' is not a distance in ticks (1 to 10,000)"),
        ("trail MES -3", "trail: '-3' is not a distance in ticks (1 to 10,000)"),
        ("reverse MES in", "reverse: missing account name after 'in'"),
    ],
)
def test_screen_verbs_refuse_bad_input(text: str, error: str) -> None:
    with pytest.raises(p.ParseError) as exc:
        parse_any(text)
    assert str(exc.value) == error


def test_the_shared_grammar_still_parses_through() -> None:
    assert isinstance(parse_any("buy 2 MES mkt"), p.OrderCommand)
    assert parse_any("sell 1 MES trail 8").order_type.value == "trailing_stop"  # type: ignore[union-attr]
