"""The fake Tradovate's order book: order commands with exact result keys, a matching engine that
fills market orders at the touch and resting limits and stops when the fake's quotes cross them,
OSO children held until the entry fills, OCO siblings cancelled, positions, fill pairs and cash,
and the quote stream that drives it.

A mixin of :class:`tests.fakes.tradovate.FakeTradovate` (it holds the entities, pushes the
``props`` and ``md`` events); shapes follow the reference (part A5) and the vendor's C#
services-api models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]

ORDER_TYPES = {"Limit", "MIT", "Market", "QTS", "Stop", "StopLimit", "TrailingStop", "TrailingStopLimit"}
SUPPORTED_TYPES = {"Market", "Limit", "Stop", "StopLimit"}
TIFS = {"Day", "FOK", "GTC", "GTD", "IOC"}
PLACE_FIELDS = {
    "accountSpec",
    "accountId",
    "clOrdId",
    "action",
    "symbol",
    "orderQty",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "text",
    "activationTime",
    "customTag50",
    "isAutomated",
    "p-ticket",
}
RESTRAINED_FIELDS = {
    "action",
    "clOrdId",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "text",
}
MODIFY_FIELDS = {
    "orderId",
    "orderQty",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "clOrdId",
    "activationTime",
    "text",
    "customTag50",
    "isAutomated",
    "p-ticket",
}
CANCEL_FIELDS = {"orderId", "clOrdId", "activationTime", "customTag50", "isAutomated", "p-ticket"}
# C# services-api LiquidatePosition model and the partner page: these fields only (no isAutomated).
LIQUIDATE_FIELDS = {"accountId", "contractId", "admin", "customTag50", "p-ticket"}


def iso(ts: datetime) -> str:
    """Tradovate's timestamp form: ``2025-11-24T06:12:00.000Z``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class _BadRequest(Exception):
    """A schema violation: HTTP 400 (or ``s:400``) with a plain text reason."""


@dataclass
class _Product:
    id: int
    name: str
    tick: Decimal
    value_per_point: Decimal


@dataclass
class _Quote:
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 10
    ask_size: int = 10
    volume: int = 0


class TradovateBook:
    """Orders, matching, positions and quotes (state lives on the FakeTradovate it is mixed into)."""

    entities: dict[str, dict[int, JSON]]
    quotes: dict[int, _Quote]
    products: dict[int, _Product]

    def _product_of(self, contract_id: int) -> _Product:
        contract = self.entities["contract"][contract_id]
        maturity = self.entities["contractMaturity"][contract["contractMaturityId"]]
        return self.products[maturity["productId"]]

    def _contract_by_symbol(self, symbol: Any) -> JSON | None:
        for c in self.entities["contract"].values():
            if isinstance(symbol, str) and c["name"].lower() == symbol.lower():
                return c
            if isinstance(symbol, int) and not isinstance(symbol, bool) and c["id"] == symbol:
                return c
        return None

    @staticmethod
    def _fail(reason: str, text: str) -> JSON:
        return {"failureReason": reason, "failureText": text}

    def _check_fields(self, body: JSON, allowed: set[str], what: str) -> None:
        unknown = set(body) - allowed
        if unknown:
            # Stricter than needed on purpose: a typo in a field name must not pass silently.
            raise _BadRequest(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")

    def _order_account(self, op: str, body: JSON) -> JSON | None:
        """The account an order names. ``accountId`` is optional (C# services-api PlaceOrder model)
        and ``accountSpec`` is the account name, or the user name with ``accountId`` (partner
        OSO/OCO examples). Missing both, or a user name alone, is a 400."""
        spec, aid = body.get("accountSpec"), body.get("accountId")
        if aid is not None and (not isinstance(aid, int) or isinstance(aid, bool)):
            raise _BadRequest(f"{op}: accountId must be an integer")
        if spec is not None and not isinstance(spec, str):
            raise _BadRequest(f"{op}: accountSpec must be a string")
        if spec is None and aid is None:
            raise _BadRequest(f"{op}: accountSpec or accountId is required")
        if aid is not None:
            account = self.entities["account"].get(aid)
            if account is None or spec not in (None, account["name"], self.username):
                return None
            return account
        if spec == self.username:
            raise _BadRequest(f"{op}: accountId is required when accountSpec is the user name")
        return next((a for a in self.entities["account"].values() if a["name"] == spec), None)

    def _check_version(self, v: JSON, what: str, product: _Product, *, needs_qty: bool) -> JSON | None:
        """Schema problems raise (HTTP 400); business problems return a failure body."""
        if v.get("action") not in ("Buy", "Sell"):
            raise _BadRequest(f"{what}: action must be Buy or Sell")
        if v.get("orderType") not in ORDER_TYPES:
            raise _BadRequest(f"{what}: orderType {v.get('orderType')!r} is not a valid OrderType")
        if "timeInForce" in v and v["timeInForce"] not in TIFS:
            raise _BadRequest(f"{what}: timeInForce {v['timeInForce']!r} is not a valid TimeInForce")
        if needs_qty:
            qty = v.get("orderQty")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                raise _BadRequest(f"{what}: orderQty must be a positive integer")
        for key in ("price", "stopPrice"):
            if key in v and (not isinstance(v[key], int | float) or isinstance(v[key], bool)):
                raise _BadRequest(f"{what}: {key} must be a number")
        if "isAutomated" in v and not isinstance(v["isAutomated"], bool):
            raise _BadRequest(f"{what}: isAutomated must be a boolean")
        if v["orderType"] not in SUPPORTED_TYPES:
            return self._fail("Unsupported", f"{v['orderType']} orders are not supported by this fake")
        if v["orderType"] in ("Limit", "StopLimit") and "price" not in v:
            return self._fail("InvalidPrice", f"{what}: a {v['orderType']} order requires price")
        if v["orderType"] in ("Stop", "StopLimit") and "stopPrice" not in v:
            return self._fail("InvalidPrice", f"{what}: a {v['orderType']} order requires stopPrice")
        for key in ("price", "stopPrice"):
            if key in v:
                price = Decimal(str(v[key]))
                # Whether the live service rejects off-tick prices is not in the reference; the
                # fake rejects them (InvalidPrice) so a client that forgets to round is caught.
                if price <= 0 or price % product.tick != 0:
                    text = f"{key} {v[key]} is not a multiple of the tick size {product.tick}"
                    return self._fail("InvalidPrice", text)
        return None

    def _order_command(self, op: str, body: JSON) -> JSON:
        if op in ("placeorder", "placeoso", "placeoco"):
            allowed = PLACE_FIELDS | ({"bracket1", "bracket2"} if op == "placeoso" else set())
            allowed |= {"other"} if op == "placeoco" else set()
            self._check_fields(body, allowed, op)
            return self._place(op, body)
        if op == "modifyorder":
            self._check_fields(body, MODIFY_FIELDS, op)
            return self._modify(body)
        if op == "cancelorder":
            self._check_fields(body, CANCEL_FIELDS, op)
            return self._cancel(body)
        self._check_fields(body, LIQUIDATE_FIELDS, op)
        return self._liquidate(body)

    def _place(self, op: str, body: JSON) -> JSON:
        for key in ("action", "symbol", "orderQty", "orderType"):
            if key not in body:
                raise _BadRequest(f"{op}: missing required field {key}")
        account = self._order_account(op, body)
        if account is None:
            return self._fail("Unauthorized", "Account is not accessible with this login")
        if "clOrdId" in body and not isinstance(body["clOrdId"], str):
            raise _BadRequest(f"{op}: clOrdId must be a string")
        contract = self._contract_by_symbol(body["symbol"])
        if contract is None:
            # Not pinned down by the reference; a business failure with the vendor's enum.
            return self._fail("InvalidContract", f"Unknown symbol {body['symbol']}")
        product = self._product_of(contract["id"])
        failure = self._check_version(body, op, product, needs_qty=True)
        if failure is not None:
            return failure
        children: list[JSON] = []
        if op == "placeoso":
            if "bracket1" not in body:
                raise _BadRequest("placeoso: bracket1 is required")
            children = [body["bracket1"]] + ([body["bracket2"]] if "bracket2" in body else [])
        elif op == "placeoco":
            if "other" not in body:
                raise _BadRequest("placeoco: other is required")
            children = [body["other"]]
        for i, child in enumerate(children, 1):
            if not isinstance(child, dict):
                raise _BadRequest(f"{op}: bracket {i} must be an object")
            self._check_fields(child, RESTRAINED_FIELDS, f"{op} bracket {i}")
            failure = self._check_version(child, f"{op} bracket {i}", product, needs_qty=False)
            if failure is not None:
                return failure
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        if self.max_position is not None:
            net = self._position(account["id"], contract["id"])["netPos"]
            signed = body["orderQty"] if body["action"] == "Buy" else -body["orderQty"]
            if abs(net + signed) > self.max_position:
                return self._fail("MaxPosLimitReached", f"Position limit of {self.max_position} would be exceeded")
        q = self.quotes[contract["id"]]
        if body["orderType"] == "Market" and (q.bid is None or q.ask is None):
            return self._fail("NoQuote", "No quote available for a market order")
        for clord in [body.get("clOrdId")] + [c.get("clOrdId") for c in children]:
            if clord:
                self.clord_ids[clord] += 1
        events: list[JSON] = []
        entry = self._new_order(account["id"], contract["id"], body, body["orderQty"], "Working", events)
        result: JSON = {"orderId": entry["id"]}
        if self._reject_after:
            # Accepted (the id goes back), then refused by risk or the exchange, said on commandReport.
            self._reject_async(entry, self._last_command(entry["id"]), events)
            self._push(events)
            return result
        if op == "placeoso":
            oco_id = self._id() if len(children) == 2 else None
            for key, child in zip(("oso1Id", "oso2Id"), children, strict=False):
                # Children wait (Suspended) until the entry fills; the reference does not say which
                # status Tradovate shows for them, ProjectX uses the same "suspended" idea.
                o = self._new_order(
                    account["id"],
                    contract["id"],
                    child,
                    body["orderQty"],
                    "Suspended",
                    events,
                    parent=entry["id"],
                    oco=oco_id,
                )
                result[key] = o["id"]
        elif op == "placeoco":
            oco_id = self._id()
            entry["ocoId"] = oco_id
            qty = body["orderQty"]
            other = self._new_order(account["id"], contract["id"], children[0], qty, "Working", events, oco=oco_id)
            result["ocoId"] = other["id"]
        self._push(events)
        self._match_all()
        return result

    def _last_command(self, order_id: int) -> JSON:
        return max((c for c in self.entities["command"].values() if c["orderId"] == order_id), key=lambda c: c["id"])

    def _reject_async(self, order: JSON, command: JSON, events: list[JSON]) -> None:
        status, reason, text = self._reject_after.pop(0)
        command["commandStatus"] = status
        report: JSON = {
            "id": self._id(),
            "commandId": command["id"],
            "timestamp": iso(self.clock.now()),
            "commandStatus": status,
            "rejectReason": reason,
        }
        if text:
            report["text"] = text
        events.append(self._props("command", "Updated", dict(command)))
        if command.get("commandType") == "New":
            order["ordStatus"] = "Rejected"
            report["ordStatus"] = "Rejected"
            # The execution report says Rejected; the reason is only on the commandReport.
            self._report(order, "Rejected", events)
            events.append(self._props("order", "Updated", dict(order)))
        else:
            report["ordStatus"] = order["ordStatus"]
        self.entities["commandReport"][report["id"]] = report
        events.append(self._props("commandReport", "Created", report))

    def _new_order(
        self,
        account_id: int,
        contract_id: int,
        v: JSON,
        qty: int,
        status: str,
        events: list[JSON],
        *,
        parent: int | None = None,
        oco: int | None = None,
    ) -> JSON:
        now = iso(self.clock.now())
        oid = self._id()
        order: JSON = {
            "id": oid,
            "accountId": account_id,
            "contractId": contract_id,
            "timestamp": now,
            "action": v["action"],
            "ordStatus": "PendingNew",
            "executionProviderId": 1,
            "admin": False,
        }
        if parent is not None:
            order["parentId"] = parent
        if oco is not None:
            order["ocoId"] = oco
        self.entities["order"][oid] = order
        version = {
            "id": self._id(),
            "orderId": oid,
            "orderQty": qty,
            "orderType": v["orderType"],
            "timeInForce": v.get("timeInForce", "Day"),
        }
        for key in ("price", "stopPrice", "text"):
            if key in v:
                version[key] = v[key]
        self.entities["orderVersion"][version["id"]] = version
        command = {
            "id": self._id(),
            "orderId": oid,
            "timestamp": now,
            "commandType": "New",
            "commandStatus": "AtExecution",
        }
        if v.get("clOrdId"):
            command["clOrdId"] = v["clOrdId"]
        self.entities["command"][command["id"]] = command
        events += [
            self._props("order", "Created", dict(order)),
            self._props("orderVersion", "Created", version),
            self._props("command", "Created", command),
        ]
        order["ordStatus"] = status
        self._report(order, "New", events)
        events.append(self._props("order", "Updated", dict(order)))
        return order

    def _report(self, order: JSON, exec_type: str, events: list[JSON], **extra: Any) -> None:
        report = {
            "id": self._id(),
            "name": "report",
            "accountId": order["accountId"],
            "contractId": order["contractId"],
            "timestamp": iso(self.clock.now()),
            "tradeDate": self._trade_date(),
            "orderId": order["id"],
            "execType": exec_type,
            "ordStatus": order["ordStatus"],
            "action": order["action"],
            **extra,
        }
        self.entities["executionReport"][report["id"]] = report
        events.append(self._props("executionReport", "Created", report))

    def _command(self, order: JSON, kind: str) -> JSON:
        return {"id": self._id(), "orderId": order["id"], "timestamp": iso(self.clock.now()), "commandType": kind,
                "commandStatus": "AtExecution"}  # fmt: skip

    def _version(self, oid: int) -> JSON:
        return max((v for v in self.entities["orderVersion"].values() if v["orderId"] == oid), key=lambda v: v["id"])

    def _modify(self, body: JSON) -> JSON:
        for key in ("orderId", "orderQty", "orderType"):
            if key not in body:
                raise _BadRequest(f"modifyorder: missing required field {key}")
        order = self.entities["order"].get(body["orderId"]) if isinstance(body["orderId"], int) else None
        if order is None:
            return self._fail("UnknownReason", f"Order {body['orderId']} not found")
        product = self._product_of(order["contractId"])
        failure = self._check_version({**body, "action": order["action"]}, "modifyorder", product, needs_qty=True)
        if failure is not None:
            return failure
        if order["ordStatus"] not in ("Working", "Suspended"):
            return self._fail("TooLate", f"Order is {order['ordStatus']}")
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        if self._reject_after:
            command = self._command(order, "Modify")
            self.entities["command"][command["id"]] = command
            events = [self._props("command", "Created", command)]
            self._reject_async(order, command, events)
            self._push(events)
            return {"commandId": command["id"]}
        events: list[JSON] = []
        current = self._version(order["id"])
        version = {
            "id": self._id(),
            "orderId": order["id"],
            "orderQty": body["orderQty"],
            "orderType": body["orderType"],
            "timeInForce": body.get("timeInForce", current.get("timeInForce", "Day")),
        }
        for key in ("price", "stopPrice"):
            if key in body:
                version[key] = body[key]
        self.entities["orderVersion"][version["id"]] = version
        command = self._command(order, "Modify")
        self.entities["command"][command["id"]] = command
        events += [self._props("command", "Created", command), self._props("orderVersion", "Created", version)]
        self._report(order, "Replaced", events)
        events.append(self._props("order", "Updated", dict(order)))
        self._push(events)
        self._match_all()
        return {"commandId": command["id"]}

    def _cancel(self, body: JSON) -> JSON:
        if "orderId" not in body:
            raise _BadRequest("cancelorder: missing required field orderId")
        order = self.entities["order"].get(body["orderId"]) if isinstance(body["orderId"], int) else None
        if order is None:
            return self._fail("UnknownReason", f"Order {body['orderId']} not found")
        if order["ordStatus"] not in ("Working", "Suspended"):
            return self._fail("TooLate", f"Order is {order['ordStatus']}")
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        command = self._command(order, "Cancel")
        self.entities["command"][command["id"]] = command
        events = [self._props("command", "Created", command)]
        self._cancel_order(order, events)
        self._push(events)
        return {"commandId": command["id"]}

    def _cancel_order(self, order: JSON, events: list[JSON]) -> None:
        order["ordStatus"] = "Canceled"
        self._report(order, "Canceled", events)
        events.append(self._props("order", "Updated", dict(order)))
        # Children of an entry that never filled go with it.
        for child in self.entities["order"].values():
            if child.get("parentId") == order["id"] and child["ordStatus"] in ("Suspended", "Working"):
                self._cancel_order(child, events)

    def _liquidate(self, body: JSON) -> JSON:
        for key in ("accountId", "contractId", "admin"):
            if key not in body:
                raise _BadRequest(f"liquidateposition: missing required field {key}")
        account = self.entities["account"].get(body["accountId"])
        contract = self.entities["contract"].get(body["contractId"])
        if account is None:
            return self._fail("Unauthorized", "Account is not accessible with this login")
        if contract is None:
            return self._fail("InvalidContract", f"Unknown contract {body['contractId']}")
        events: list[JSON] = []
        for order in list(self.entities["order"].values()):
            if (
                order["accountId"] == account["id"]
                and order["contractId"] == contract["id"]
                and order["ordStatus"] in ("Working", "Suspended")
            ):
                self._cancel_order(order, events)
        net = self._position(account["id"], contract["id"])["netPos"]
        if net == 0:
            self._push(events)
            return self._fail("UnknownReason", "No position to liquidate")
        q = self.quotes[contract["id"]]
        if q.bid is None or q.ask is None:
            self._push(events)
            return self._fail("NoQuote", "No quote available to liquidate")
        v = {"action": "Sell" if net > 0 else "Buy", "orderType": "Market", "timeInForce": "Day"}
        order = self._new_order(account["id"], contract["id"], v, abs(net), "Working", events)
        self._push(events)
        self._match_all()
        return {"orderId": order["id"]}

    # ------------------------------------------------------------------ matching

    def set_quote(
        self,
        symbol: str,
        *,
        bid: float | str | None = None,
        ask: float | str | None = None,
        last: float | str | None = None,
        bid_size: int | None = None,
        ask_size: int | None = None,
        volume: int | None = None,
    ) -> None:
        """Move the fake market (None leaves a field as it is); subscribers get every entry that
        has data, a side without data absent (example-api-js EX-08: "Any of entries may absent if
        no data available for them"), then resting orders that the new prices cross are filled."""
        contract = self._contract_by_symbol(symbol)
        assert contract is not None, f"the fake has no contract {symbol}"
        q = self.quotes[contract["id"]]
        if bid is not None or bid_size is not None:
            q.bid = Decimal(str(bid)) if bid is not None else q.bid
            # A new price level shows fresh size unless the test says otherwise.
            q.bid_size = bid_size if bid_size is not None else (10 if bid is not None else q.bid_size)
        if ask is not None or ask_size is not None:
            q.ask = Decimal(str(ask)) if ask is not None else q.ask
            q.ask_size = ask_size if ask_size is not None else (10 if ask is not None else q.ask_size)
        if last is not None:
            q.last = Decimal(str(last))
            q.volume += 1
        if volume is not None:
            q.volume = volume
        self._push_quote(contract["id"], self._full_entries(contract["id"]))
        self._match_all()

    def clear_side(self, symbol: str, side: str) -> None:
        """That side of the book empties: the next md updates carry no ``Bid`` (or ``Offer``)."""
        contract = self._contract_by_symbol(symbol)
        assert contract is not None and side in ("Bid", "Offer")
        q = self.quotes[contract["id"]]
        if side == "Bid":
            q.bid, q.bid_size = None, 0
        else:
            q.ask, q.ask_size = None, 0
        self._push_quote(contract["id"], self._full_entries(contract["id"]))

    def push_entries(self, symbol: str, entries: JSON) -> None:
        """Send one md quote with exactly these entries (an entry may lack its price or its size)."""
        contract = self._contract_by_symbol(symbol)
        assert contract is not None
        self._push_quote(contract["id"], entries)

    def _full_entries(self, contract_id: int) -> JSON:
        q = self.quotes[contract_id]
        entries: JSON = {}
        if q.bid is not None:
            entries["Bid"] = {"price": float(q.bid), "size": q.bid_size}
        if q.ask is not None:
            entries["Offer"] = {"price": float(q.ask), "size": q.ask_size}
        if q.last is not None:
            entries["Trade"] = {"price": float(q.last), "size": 1}
        entries["TotalTradeVolume"] = {"size": q.volume}
        entries["SettlementPrice"] = {"price": float(q.last or q.bid or 0) or None}
        if entries["SettlementPrice"]["price"] is None:
            del entries["SettlementPrice"]
        return entries

    def _push_quote(self, contract_id: int, entries: JSON) -> None:
        if not entries:
            return
        quote = {"timestamp": iso(self.clock.now()), "contractId": contract_id, "entries": entries}
        frame = "a" + json.dumps([{"e": "md", "d": {"quotes": [quote]}}])
        for conn in self._conns:
            if conn.kind == "md" and contract_id in conn.quotes:
                self._spawn(self._send(conn, frame))

    def _match_all(self) -> None:
        """Fill every working order the current quotes cross (repeats: fills release OSO children)."""
        for _ in range(10):
            events: list[JSON] = []
            for order in list(self.entities["order"].values()):
                if order["ordStatus"] == "Working":
                    self._try_fill(order, events)
            if not events:
                return
            self._push(events)

    def _try_fill(self, order: JSON, events: list[JSON]) -> None:
        q = self.quotes[order["contractId"]]
        v = self._version(order["id"])
        buy = order["action"] == "Buy"
        touch = q.ask if buy else q.bid
        if touch is None:
            return
        kind = v["orderType"]
        price: Decimal | None = None
        if kind in ("Stop", "StopLimit") and order["id"] not in self._stop_triggered:
            stop = Decimal(str(v["stopPrice"]))
            if (buy and touch >= stop) or (not buy and touch <= stop):
                self._stop_triggered.add(order["id"])
            else:
                return
        if kind in ("Market", "Stop"):
            price = touch
        else:
            limit = Decimal(str(v["price"]))
            if buy and touch <= limit:
                price = min(limit, touch)
            elif not buy and touch >= limit:
                price = max(limit, touch)
        if price is None:
            return
        # Fills take the size shown at the touch (partial fills when it is smaller than the order),
        # and that size is consumed, as on a real book.
        done, _ = self._filled.get(order["id"], (0, Decimal(0)))
        size = q.ask_size if buy else q.bid_size
        qty = min(v["orderQty"] - done, size)
        if qty <= 0:
            return
        if buy:
            q.ask_size -= qty
        else:
            q.bid_size -= qty
        self._push_quote(order["contractId"], self._full_entries(order["contractId"]))
        self._fill(order, v, price, qty, events)

    def _fill(self, order: JSON, version: JSON, price: Decimal, qty: int, events: list[JSON]) -> None:
        fill = {
            "id": self._id(),
            "orderId": order["id"],
            "contractId": order["contractId"],
            "timestamp": iso(self.clock.now()),
            "tradeDate": self._trade_date(),
            "action": order["action"],
            "qty": qty,
            "price": float(price),
            "active": True,
            "finallyPaired": 0,
        }
        self.entities["fill"][fill["id"]] = fill
        done, notional = self._filled.get(order["id"], (0, Decimal(0)))
        done, notional = done + qty, notional + price * qty
        self._filled[order["id"]] = (done, notional)
        complete = done >= version["orderQty"]
        if complete:
            order["ordStatus"] = "Filled"
        avg = float(notional / done)
        self._report(order, "Trade", events, cumQty=done, avgPx=avg, lastQty=qty, lastPx=float(price))
        events.append(self._props("fill", "Created", fill))
        events.append(self._props("order", "Updated", dict(order)))
        self._apply_to_position(order, fill, price, events)
        if not complete:
            # Simplification: OSO children wait for the whole entry, and an OCO sibling is
            # cancelled only when its partner is done (the reference does not describe partials).
            return
        for other in self.entities["order"].values():
            if other["id"] == order["id"]:
                continue
            if other.get("parentId") == order["id"] and other["ordStatus"] == "Suspended":
                other["ordStatus"] = "Working"
                self._report(other, "New", events)
                events.append(self._props("order", "Updated", dict(other)))
            elif (
                order.get("ocoId") is not None
                and other.get("ocoId") == order["ocoId"]
                and other["ordStatus"] in ("Working", "Suspended")
            ):
                self._cancel_order(other, events)

    def _position(self, account_id: int, contract_id: int) -> JSON:
        for p in self.entities["position"].values():
            if p["accountId"] == account_id and p["contractId"] == contract_id:
                return p
        return {"netPos": 0}

    def _apply_to_position(self, order: JSON, fill: JSON, price: Decimal, events: list[JSON]) -> None:
        pos = self._position(order["accountId"], order["contractId"])
        created = "id" not in pos
        if created:
            pos = {
                "id": self._id(),
                "accountId": order["accountId"],
                "contractId": order["contractId"],
                "tradeDate": self._trade_date(),
                "netPos": 0,
                "netPrice": None,
                "bought": 0,
                "boughtValue": 0.0,
                "sold": 0,
                "soldValue": 0.0,
                "prevPos": 0,
                "prevPrice": None,
            }
            self.entities["position"][pos["id"]] = pos
        buy = order["action"] == "Buy"
        qty = fill["qty"]
        if buy:
            pos["bought"] += qty
            pos["boughtValue"] += float(price) * qty
        else:
            pos["sold"] += qty
            pos["soldValue"] += float(price) * qty
        lots = self._lots.setdefault(pos["id"], [])
        product = self._product_of(order["contractId"])
        remaining = qty
        realized = Decimal(0)
        while remaining and lots and lots[0][1] != buy:
            lot = lots[0]
            m = min(remaining, lot[2])
            buy_fill, sell_fill = (fill["id"], lot[0]) if buy else (lot[0], fill["id"])
            buy_price, sell_price = (price, lot[3]) if buy else (lot[3], price)
            pair = {
                "id": self._id(),
                "positionId": pos["id"],
                "buyFillId": buy_fill,
                "sellFillId": sell_fill,
                "qty": m,
                "buyPrice": float(buy_price),
                "sellPrice": float(sell_price),
                "active": True,
            }
            self.entities["fillPair"][pair["id"]] = pair
            events.append(self._props("fillPair", "Created", pair))
            realized += (sell_price - buy_price) * m * product.value_per_point
            lot[2] -= m
            remaining -= m
            if lot[2] == 0:
                lots.pop(0)
        if remaining:
            lots.append([fill["id"], buy, remaining, price])
        pos["netPos"] = sum(lot[2] if lot[1] else -lot[2] for lot in lots)
        if lots:
            total = sum(lot[3] * lot[2] for lot in lots)
            pos["netPrice"] = float(total / sum(lot[2] for lot in lots))
        else:
            pos["netPrice"] = None
        pos["timestamp"] = iso(self.clock.now())
        events.append(self._props("position", "Created" if created else "Updated", dict(pos)))
        if realized:
            cash = next(c for c in self.entities["cashBalance"].values() if c["accountId"] == order["accountId"])
            cash["amount"] = float(Decimal(str(cash["amount"])) + realized)
            cash["realizedPnL"] = float(Decimal(str(cash["realizedPnL"])) + realized)
            cash["weekRealizedPnL"] = float(Decimal(str(cash["weekRealizedPnL"])) + realized)
            cash["timestamp"] = iso(self.clock.now())
            events.append(self._props("cashBalance", "Updated", dict(cash)))
