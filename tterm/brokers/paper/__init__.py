"""The paper broker: simulated accounts, market and matching, embedded and offline."""

from tterm.brokers.paper.broker import PaperBroker
from tterm.brokers.paper.feed import DEFAULT_SYMBOLS, START_PRICES
from tterm.brokers.paper.ledger import DEFAULT_ACCOUNTS, PaperAccountSpec
from tterm.brokers.paper.matching import ModifyRejected
from tterm.brokers.paper.replay import ReplayError

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_SYMBOLS",
    "START_PRICES",
    "ModifyRejected",
    "PaperAccountSpec",
    "PaperBroker",
    "ReplayError",
]
