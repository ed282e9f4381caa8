"""Number and time formatting for the screen. Pure (no Textual): formatted once per change, in the
frame flush, never inside a render call.

One format per kind, everywhere (watchlist, ticket, orders, fills, positions, toasts, dialogs):
prices with the instrument's decimals and thousands separators (:func:`price`), money in dollars
and cents (:func:`money`), volume abbreviated from a thousand (:func:`volume`), sizes in whole
units with separators (:func:`size`), and ticks as whole ticks (:func:`ticks`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from tterm.core.models import Instrument, OrderRequest

DASH = "—"
SPARK = "▁▂▃▄▅▆▇█"


@lru_cache(maxsize=512)
def tick_decimals(tick_size: Decimal) -> int:
    """Decimal places needed to show every price on the tick grid (0.25 -> 2, 1 -> 0)."""
    exponent = tick_size.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def price(value: Decimal | None, inst: Instrument | None = None, *, places: int | None = None) -> str:
    """A price with the instrument's decimals (``5000.25``, ``187.50``); a dash when unknown."""
    if value is None:
        return DASH
    if places is None:
        places = tick_decimals(inst.tick_size) if inst is not None else 2
    return f"{value:,.{places}f}"


def signed_price(value: Decimal | None, inst: Instrument | None = None) -> str:
    """A price change with an explicit sign (``+1.25``, ``-0.50``)."""
    if value is None:
        return DASH
    places = tick_decimals(inst.tick_size) if inst is not None else 2
    return f"{value:+,.{places}f}"


def pct(value: Decimal | None) -> str:
    if value is None:
        return DASH
    rounded = round(value, 2)
    return "0.00%" if rounded == 0 else f"{rounded:+.2f}%"


def money(value: Decimal | None, *, signed: bool = False) -> str:
    """Dollars with cents and thousands separators: ``$1,234.50``, ``-$320.00``, ``+$12.00``."""
    if value is None:
        return DASH
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.2f}"


def touch(px: Decimal | None, qty: int | None, inst: Instrument | None = None, *, sep: str = "×") -> str:
    """One side of the book, ``6,650.25×12``; a side without a price is absent (``—``), size and all."""
    if px is None:
        return DASH
    return f"{price(px, inst)}{sep}{size(qty)}"


def size(value: int | None) -> str:
    if value is None:
        return DASH
    return f"{value:,}"


def volume(value: int | None) -> str:
    """Volume in one style, three significant digits from a thousand on: 950, 9.88K, 152K, 4.56M, 1.20B."""
    if value is None:
        return DASH
    v = abs(value)
    if v < 1_000:
        return f"{value}"
    for div, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if v >= div:
            scaled = Decimal(value) / div
            places = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            # Cut, not rounded: 999,999 reads 999K, never 1000K; a volume is never overstated.
            return f"{scaled.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)}{unit}"
    return f"{value}"  # pragma: no cover - the loop always returns for v >= 1_000


def ticks(value: Decimal | int | None) -> str:
    """A distance in whole ticks (``1,971t``): a fraction of a tick is not a tick, so it is dropped."""
    if value is None:
        return DASH
    whole = int(Decimal(value).to_integral_value(rounding=ROUND_DOWN))
    return f"{whole:,}t"


def describe(request: OrderRequest, inst: Instrument | None) -> str:
    """The order in plain words with its prices in the instrument's format."""
    return request.describe(price=lambda value: price(value, inst))


def sparkline(values: list[Decimal] | tuple[Decimal, ...], width: int) -> str:
    """A tiny trend of the last ``width`` values in block characters (flat when they are equal)."""
    vals = list(values)[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return SPARK[3] * len(vals)
    span = hi - lo
    top = len(SPARK) - 1
    return "".join(SPARK[int((v - lo) / span * top)] for v in vals)


def duration(delta: timedelta) -> str:
    """A short countdown: ``2h05m``, ``4m09s``, ``12s``; negative durations read ``passed``."""
    total = int(delta.total_seconds())
    if total < 0:
        return "passed"
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def age(seconds: float) -> str:
    """How long ago a message arrived: ``0.4s``, ``12s``, ``3m``, ``2h``."""
    if seconds < 0:
        seconds = 0
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


def fit(text: str, width: int, align: str = "left") -> str:
    """Pad or cut ``text`` to exactly ``width`` cells (an ellipsis marks a cut)."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    if align == "right":
        return text.rjust(width)
    if align == "center":
        return text.center(width)
    return text.ljust(width)
