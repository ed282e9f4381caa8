"""The REST endpoints of the fake ProjectX gateway, one method each (B3-B8).

A mixin of :class:`tests.fakes.projectx.FakeProjectX`: each handler takes the parsed JSON body
and the authenticated user name, binds the body with :func:`tests.fakes.projectx_wire.bind`
(HTTP 400 on a binding failure) and answers an envelope (HTTP 200, ``success`` true or false
with the endpoint's error code).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tests.fakes.projectx_book import (
    MOD_ACCOUNT_NOT_FOUND,
    PLACE_ACCOUNT_NOT_FOUND,
    PLACE_CONTRACT_NOT_ACTIVE,
    PLACE_CONTRACT_NOT_FOUND,
    POS_ACCOUNT_NOT_FOUND,
    POS_CONTRACT_NOT_FOUND,
    Account,
    Book,
    Reject,
)
from tests.fakes.projectx_market import UNIT_TICK, Market
from tests.fakes.projectx_wire import Invalid, bind, envelope

JSON = dict[str, Any]
MAX_BARS = 20_000

# Login error codes (B3).
LOGIN_USER_NOT_FOUND, LOGIN_PASSWORD_FAILED, LOGIN_INVALID_CREDENTIALS = 1, 2, 3
LOGIN_APP_NOT_FOUND, LOGIN_APP_VERIFICATION_FAILED = 4, 5
LOGIN_NO_SUBSCRIPTION, LOGIN_KEY_DISABLED = 9, 10


class RestEndpoints:
    """The gateway's REST actions over :attr:`book` and :attr:`market`."""

    book: Book
    market: Market
    clock: Any
    username: str
    api_key: str
    password: str
    app_id: str
    verify_key: str
    tokens: dict[str, Any]
    token_lifetime: timedelta
    api_key_enabled: bool
    api_subscription: bool
    tick_bars: bool
    logins: int
    failed_logins: int
    validations: int
    issue_token: Callable[[str], str]

    def _endpoints(self) -> dict[str, Callable[[Any, str | None], JSON]]:
        return {
            "auth/loginkey": self._login_key,
            "auth/loginapp": self._login_app,
            "auth/validate": self._validate,
            "auth/logout": self._logout,
            "account/search": self._account_search,
            "contract/search": self._contract_search,
            "contract/searchbyid": self._contract_by_id,
            "contract/available": self._contract_available,
            "history/retrievebars": self._bars,
            "order/search": self._order_search,
            "order/searchopen": self._order_search_open,
            "order/searchbyid": self._order_by_id,
            "order/place": self._order_place,
            "order/cancel": self._order_cancel,
            "order/modify": self._order_modify,
            "position/searchopen": self._position_search_open,
            "position/closecontract": self._position_close,
            "position/partialclosecontract": self._position_partial_close,
            "trade/search": self._trade_search,
        }

    def _login_result(self, code: int, message: str | None) -> JSON:
        if code:
            self.failed_logins += 1
            return envelope({"token": None}, code=code, message=message)
        self.logins += 1
        return envelope({"token": self.issue_token(self.username)})

    def _login_key(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"userName": ("str", True), "apiKey": ("str", True)})
        if f["userName"].lower() != self.username.lower():
            return self._login_result(LOGIN_USER_NOT_FOUND, "User not found.")
        if not self.api_key_enabled:
            return self._login_result(LOGIN_KEY_DISABLED, "API key authentication is disabled.")
        if not self.api_subscription:
            return self._login_result(LOGIN_NO_SUBSCRIPTION, "No active API subscription.")
        if not hmac.compare_digest(f["apiKey"], self.api_key):
            return self._login_result(LOGIN_INVALID_CREDENTIALS, "Invalid credentials.")
        return self._login_result(0, None)

    def _login_app(self, body: Any, _user: str | None) -> JSON:
        f = bind(
            body,
            {
                "userName": ("str", True),
                "password": ("str", True),
                "deviceId": ("str", True),
                "appId": ("str", True),
                "verifyKey": ("str", True),
            },
        )
        if f["appId"] != self.app_id:
            return self._login_result(LOGIN_APP_NOT_FOUND, "Application not found.")
        if not hmac.compare_digest(f["verifyKey"], self.verify_key):
            return self._login_result(LOGIN_APP_VERIFICATION_FAILED, "Application verification failed.")
        if f["userName"].lower() != self.username.lower():
            return self._login_result(LOGIN_USER_NOT_FOUND, "User not found.")
        if not hmac.compare_digest(f["password"], self.password):
            return self._login_result(LOGIN_PASSWORD_FAILED, "Password verification failed.")
        return self._login_result(0, None)

    def _validate(self, _body: Any, user: str | None) -> JSON:
        # The old token stays good until its own expiry (UNCERTAIN: the docs say the new one
        # "replaces" it without saying the old one stops working).
        assert user is not None
        self.validations += 1
        return envelope({"newToken": self.issue_token(user)})

    def _logout(self, _body: Any, user: str | None) -> JSON:
        for info in self.tokens.values():
            if info.user == user:
                info.revoked = True
        return envelope()

    def _account_search(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"onlyActiveAccounts": ("bool", True)})
        accounts = [a.json() for a in self.book.accounts.values() if a.active or not f["onlyActiveAccounts"]]
        return envelope({"accounts": accounts})

    def _contract_search(self, body: Any, _user: str | None) -> JSON:
        # ``live`` picks the data subscription (B1); the fake lists the same contracts either way.
        f = bind(body, {"searchText": ("str", True), "live": ("bool", True)})
        return envelope({"contracts": [c.json() for c in self.market.search(f["searchText"])]})

    def _contract_by_id(self, body: Any, _user: str | None) -> JSON:
        # U9: the current docs answer ``contract``; early ones ``contracts: [one]``. The fake
        # emits the current form.
        f = bind(body, {"contractId": ("str", True)})
        c = self.market.get(f["contractId"])
        if c is None:
            return envelope({"contract": None}, code=1, message=f"Contract {f['contractId']} was not found.")
        return envelope({"contract": c.json()})

    def _contract_available(self, body: Any, _user: str | None) -> JSON:
        bind(body, {"live": ("bool", True)})
        return envelope({"contracts": [c.json() for c in self.market.contracts.values() if c.active]})

    def _bars(self, body: Any, _user: str | None) -> JSON:
        f = bind(
            body,
            {
                "contractId": ("str", True),
                "live": ("bool", True),
                "startTime": ("datetime", True),
                "endTime": ("datetime", True),
                "unit": ("int", True),
                "unitNumber": ("int", True),
                "limit": ("int", True),
                "includePartialBar": ("bool", True),
            },
        )
        if self.market.get(f["contractId"]) is None:
            return envelope({"bars": None}, code=1, message=f"Contract {f['contractId']} was not found.")
        units = range(1, UNIT_TICK + 1) if self.tick_bars else range(1, UNIT_TICK)
        if f["unit"] not in units:
            return envelope({"bars": None}, code=2, message=f"Invalid unit: {f['unit']}.")
        if f["unitNumber"] < 1:
            return envelope({"bars": None}, code=3, message=f"Invalid unit number: {f['unitNumber']}.")
        if not 1 <= f["limit"] <= MAX_BARS:
            return envelope(
                {"bars": None}, code=4, message=f"Invalid limit {f['limit']}: at most {MAX_BARS} bars a call."
            )
        bars = self.market.bars(
            f["contractId"],
            f["startTime"],
            f["endTime"],
            f["unit"],
            f["unitNumber"],
            f["limit"],
            f["includePartialBar"],
            self.clock.now(),
        )
        return envelope({"bars": bars})

    def _account_or(self, account_id: Any, code: int) -> Account:
        return self.book.account(account_id, code)

    def _searched(self, key: str, fn: Callable[[], list[Any]]) -> JSON:
        try:
            return envelope({key: fn()})
        except Reject as exc:
            return envelope({key: None}, code=exc.code, message=exc.message)

    def _order_search(self, body: Any, _user: str | None) -> JSON:
        f = bind(
            body,
            {"accountId": ("int", True), "startTimestamp": ("datetime", True), "endTimestamp": ("datetime", False)},
        )
        return self._searched(
            "orders",
            lambda: [
                o.json()
                for o in self.book.orders_between(
                    self._account_or(f["accountId"], 1).id, f["startTimestamp"], f["endTimestamp"]
                )
            ],
        )

    def _order_search_open(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"accountId": ("int", True)})
        return self._searched(
            "orders", lambda: [o.json() for o in self.book.open_orders(self._account_or(f["accountId"], 1).id)]
        )

    def _order_by_id(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"accountId": ("int", False), "orderId": ("long", True)})
        order = self.book.orders.get(f["orderId"])
        if order is None or (f["accountId"] is not None and order.account_id != f["accountId"]):
            return envelope({"order": None}, code=1, message=f"Order {f['orderId']} was not found.")
        return envelope({"order": order.json()})

    def _order_place(self, body: Any, _user: str | None) -> JSON:
        f = bind(
            body,
            {
                "accountId": ("int", True),
                "contractId": ("str", True),
                "type": ("int", True),
                "side": ("int", True),
                "size": ("int", True),
                "limitPrice": ("decimal", False),
                "stopPrice": ("decimal", False),
                "trailPrice": ("decimal", False),
                "customTag": ("str", False),
                # Early-2025 docs only (U15): accepted and ignored; project-x-py leaves it out unless set.
                "linkedOrderId": ("long", False),
                "stopLossBracket": ("bracket", False),
                "takeProfitBracket": ("bracket", False),
            },
        )
        try:
            account = self._account_or(f["accountId"], PLACE_ACCOUNT_NOT_FOUND)
            contract = self.market.get(f["contractId"])
            if contract is None:
                raise Reject(PLACE_CONTRACT_NOT_FOUND, f"Contract {f['contractId']} was not found.")
            if not contract.active:
                raise Reject(PLACE_CONTRACT_NOT_ACTIVE, f"Contract {contract.id} is not active.")
            order = self.book.place(
                account,
                contract,
                type=f["type"],
                side=f["side"],
                size=f["size"],
                limit_price=f["limitPrice"],
                stop_price=f["stopPrice"],
                trail_price=f["trailPrice"],
                # An empty tag is taken as no tag (UNCERTAIN).
                custom_tag=f["customTag"] or None,
                stop_loss=f["stopLossBracket"],
                take_profit=f["takeProfitBracket"],
            )
        except Reject as exc:
            return envelope({"orderId": None}, code=exc.code, message=exc.message)
        return envelope({"orderId": order.id})

    def _order_cancel(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"accountId": ("int", True), "orderId": ("long", True)})
        try:
            self.book.cancel(self._account_or(f["accountId"], MOD_ACCOUNT_NOT_FOUND), f["orderId"])
        except Reject as exc:
            return envelope(code=exc.code, message=exc.message)
        return envelope()

    def _order_modify(self, body: Any, _user: str | None) -> JSON:
        f = bind(
            body,
            {
                "accountId": ("int", True),
                "orderId": ("long", True),
                "size": ("int", False),
                "limitPrice": ("decimal", False),
                "stopPrice": ("decimal", False),
                "trailPrice": ("decimal", False),
            },
        )
        try:
            self.book.modify(
                self._account_or(f["accountId"], MOD_ACCOUNT_NOT_FOUND),
                f["orderId"],
                size=f["size"],
                limit_price=f["limitPrice"],
                stop_price=f["stopPrice"],
                trail_price=f["trailPrice"],
            )
        except Reject as exc:
            return envelope(code=exc.code, message=exc.message)
        return envelope()

    def _position_search_open(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"accountId": ("int", True)})
        return self._searched(
            "positions", lambda: [p.json() for p in self.book.open_positions(self._account_or(f["accountId"], 1).id)]
        )

    def _close(self, f: JSON, size: int | None, partial: bool) -> JSON:
        try:
            account = self._account_or(f["accountId"], POS_ACCOUNT_NOT_FOUND)
            contract = self.market.get(f["contractId"])
            if contract is None:
                raise Reject(POS_CONTRACT_NOT_FOUND, f"Contract {f['contractId']} was not found.")
            self.book.close(account, contract, size, partial=partial)
        except Reject as exc:
            return envelope(code=exc.code, message=exc.message)
        return envelope()

    def _position_close(self, body: Any, _user: str | None) -> JSON:
        f = bind(body, {"accountId": ("int", True), "contractId": ("str", True)})
        return self._close(f, None, partial=False)

    def _position_partial_close(self, body: Any, _user: str | None) -> JSON:
        # vendor-updates.md: the docs send ``size``; an older field name was ``closeSize``
        # (project-x-py before 2.0 sent it). Either is taken; ``size`` wins when both come.
        f = bind(
            body,
            {
                "accountId": ("int", True),
                "contractId": ("str", True),
                "size": ("int", False),
                "closeSize": ("int", False),
            },
        )
        size = f["size"] if f["size"] is not None else f["closeSize"]
        if size is None:
            raise Invalid({"size": ["The size field is required."]})
        return self._close(f, size, partial=True)

    def _trade_search(self, body: Any, _user: str | None) -> JSON:
        # project-x-py may add ``contractId``; ASP.NET ignores unknown fields, and so does the fake.
        f = bind(
            body,
            {"accountId": ("int", True), "startTimestamp": ("datetime", True), "endTimestamp": ("datetime", False)},
        )
        return self._searched(
            "trades",
            lambda: self.book.trades_between(
                self._account_or(f["accountId"], 1).id, f["startTimestamp"], f["endTimestamp"]
            ),
        )
