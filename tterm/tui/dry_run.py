"""The broker's dry run in plain words, for the ticket and the order confirmation.

Accounts whose broker dry-runs orders (``Account.previews``: Schwab's previewOrder, Tastytrade's
/orders/dry-run) get one line: what the broker says the order costs, its fees, buying power
before and after, its warnings, and its rejects. A reject blocks the send with the broker's
reason. A dry run that fails or does not answer in time is never taken as a pass: it reads
"broker check unavailable: <reason>" and the user decides. The engine journals every answer.
No Textual here: the ticket and the dialog only show what this returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import ModelError, OrderPreview, OrderRequest
from tterm.tui import format as fmt

#: How long the screen waits for a dry run. The engine gives the broker less (``PREVIEW_TIMEOUT``)
#: and journals that timeout; this one also covers a slow link to a hub.
DRY_RUN_WAIT = 8.0

#: The ticket asks the broker this long after the last edit (on top of its own 0.15 s), so typing
#: a price does not send a dry run per keystroke into the broker's rate limit.
TICKET_DEBOUNCE = 0.45


@dataclass(frozen=True, slots=True)
class DryRun:
    """One dry run's line: ``level`` is ok / warn / error; ``blocks`` is the broker's reject (the
    send is refused with it); ``unavailable`` means no answer, which the user must accept."""

    text: str
    level: str
    blocks: str = ""
    unavailable: bool = False


def pending(broker: str) -> DryRun:
    return DryRun(f"{broker} dry run: asking the broker…", "")


def unavailable(reason: str) -> DryRun:
    return DryRun(f"⚠ broker check unavailable: {reason}", "warn", unavailable=True)


def explain(preview: OrderPreview, buying_power: Decimal | None = None) -> DryRun:
    """The preview as one line: ``✓ tt dry run ok · cost $… · fees $… · buying power $… → $…``."""
    if not preview.accepted:
        reason = "; ".join(preview.rejects) or "the broker refuses it (no reason given)"
        return DryRun(f"✗ {preview.broker} dry run rejects it: {reason}", "error", blocks=reason)
    words = [f"✓ {preview.broker} dry run ok"]
    if preview.order_value is not None:
        words.append(f"cost {fmt.money(preview.order_value)}")
    if preview.commission is not None:
        words.append(f"fees {fmt.money(preview.commission)}")
    if preview.buying_power_after is not None:
        before = f"{fmt.money(buying_power)} → " if buying_power is not None else ""
        words.append(f"buying power {before}{fmt.money(preview.buying_power_after)}")
    level = "ok"
    if preview.warnings:
        words.append("⚠ " + "; ".join(preview.warnings))
        level = "warn"
    return DryRun(" · ".join(words), level)


async def ask(client: Any, request: OrderRequest, buying_power: Decimal | None = None,
              wait: float = DRY_RUN_WAIT) -> DryRun:  # fmt: skip
    """Ask the engine for the broker's dry run of ``request``; never raises for a failed check."""
    try:
        async with asyncio.timeout(wait):
            preview = await client.broker_preview(request)
    except TimeoutError:
        return unavailable(f"no answer in {wait:g} s")
    except (EngineError, UnknownSymbol, ModelError) as exc:
        return unavailable(str(exc))
    except Exception as exc:  # an unreachable engine or a broken link: shown, never a pass
        return unavailable(f"{type(exc).__name__}: {exc}")
    return explain(preview, buying_power)


__all__ = ["DRY_RUN_WAIT", "TICKET_DEBOUNCE", "DryRun", "ask", "explain", "pending", "unavailable"]
