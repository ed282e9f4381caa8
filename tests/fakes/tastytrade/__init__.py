"""A strict fake Tastytrade: REST, the account streamer and DXLink on loopback ports.

``FakeTastytrade`` (in :mod:`.server`) is the entry point; the rooms are :mod:`.rest` (auth,
envelopes, routes), :mod:`.book` (orders and matching), :mod:`.accounts` (positions, balances,
fees), :mod:`.market` (instruments and prices), :mod:`.shapes` (instrument JSON) and
:mod:`.dxlink` (the market-data socket). Facts come from
``shared/reference/brokers-schwab-tastytrade.md`` part B, corrected by ``vendor-updates.md``,
and from the public ``tastytrade`` SDK, which the integration tests use as an independent client.
"""

from tests.fakes.tastytrade.server import FakeTastytrade

__all__ = ["FakeTastytrade"]
