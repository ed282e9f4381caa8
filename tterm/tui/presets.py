"""Quantity presets per asset class: what ``b``/``s`` on the watchlist, the DOM keys and a new
ticket use, so a key on AAPL never buys one share by surprise (``[general] quantity_presets``).

Keys 1-4 pick a preset, ``+``/``-`` step through them; a quantity typed in the ticket becomes the
current one for its asset class. The choice is per class: picking 5 contracts for MES leaves
AAPL at its share preset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tterm.core.models import AssetClass, Instrument

DEFAULTS: dict[str, tuple[int, ...]] = {
    "future": (1, 2, 5, 10),
    "equity": (100, 200, 500, 1000),
    "option": (1, 2, 5, 10),
}


class QuantityPresets:
    """The presets of each asset class and the quantity currently chosen for it."""

    def __init__(self, presets: Mapping[str, Sequence[int]] | None = None) -> None:
        merged = dict(DEFAULTS)
        for key, sizes in (presets or {}).items():
            merged[key] = tuple(sizes)
        self.presets: dict[AssetClass, tuple[int, ...]] = {AssetClass(k): v for k, v in merged.items()}
        self.current: dict[AssetClass, int] = {a: sizes[0] for a, sizes in self.presets.items()}

    def sizes(self, inst: Instrument) -> tuple[int, ...]:
        return self.presets[inst.asset_class]

    def quantity(self, inst: Instrument) -> int:
        return self.current[inst.asset_class]

    def choose(self, inst: Instrument, slot: int) -> int | None:
        """Preset number ``slot`` (1-based); None when the class has fewer presets."""
        sizes = self.sizes(inst)
        if not 1 <= slot <= len(sizes):
            return None
        self.current[inst.asset_class] = sizes[slot - 1]
        return sizes[slot - 1]

    def step(self, inst: Instrument, step: int) -> int:
        """The next larger (+1) or smaller (-1) preset from the current quantity."""
        sizes = self.sizes(inst)
        qty = self.quantity(inst)
        if step > 0:
            nxt = next((n for n in sizes if n > qty), sizes[-1])
        else:
            nxt = next((n for n in reversed(sizes) if n < qty), sizes[0])
        self.current[inst.asset_class] = nxt
        return nxt

    def set(self, inst: Instrument, quantity: int) -> None:
        """A quantity typed in the ticket: the current one for the class from now on."""
        if quantity >= 1:
            self.current[inst.asset_class] = quantity

    def label(self, inst: Instrument) -> str:
        qty = self.quantity(inst)
        return " ".join(f"[{n}]" if n == qty else str(n) for n in self.sizes(inst))
