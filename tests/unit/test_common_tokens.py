"""TokenManager: login once, renew ahead of expiry, single flight, fallbacks, background loop."""

import asyncio
from datetime import timedelta

import pytest

from tests.fakes import FakeClock
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.core.broker import AuthError, BrokerError

LIFETIME = timedelta(minutes=80)


class Vendor:
    """Issues numbered tokens on the shared fake clock; counts what it was asked."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.n = 0
        self.logins = 0
        self.renewals = 0
        self.renew_error: Exception | None = None
        self.gate: asyncio.Event | None = None

    def _issue(self) -> Token:
        self.n += 1
        now = self.clock.now()
        return Token(value=f"tok-{self.n}", expires_at=now + LIFETIME, issued_at=now)

    async def login(self) -> Token:
        self.logins += 1
        if self.gate is not None:
            await self.gate.wait()
        return self._issue()

    async def renew(self, token: Token) -> Token:
        self.renewals += 1
        if self.renew_error is not None:
            raise self.renew_error
        assert self.clock.now() < token.expires_at, "renewed an expired token"
        return self._issue()


def manager(clock, vendor, **kw):
    return TokenManager(login=vendor.login, renew=vendor.renew, clock=clock, **kw)


async def test_first_get_logs_in_and_later_gets_reuse_the_token():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor)
    assert tm.expires_in() is None
    t1 = await tm.get()
    t2 = await tm.get()
    assert t1 is t2 and vendor.logins == 1
    assert tm.expires_in() == LIFETIME
    clock.advance(600)
    assert tm.expires_in() == LIFETIME - timedelta(seconds=600)


async def test_get_renews_inside_the_window_before_expiry():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor, renew_ahead=timedelta(minutes=15))
    first = await tm.get()
    clock.advance(timedelta(minutes=64))
    assert (await tm.get()) is first
    clock.advance(timedelta(minutes=1))
    second = await tm.get()
    assert second.value == "tok-2" and vendor.renewals == 1 and vendor.logins == 1
    assert tm.renewals == 1 and tm.logins == 1


async def test_concurrent_callers_share_one_login():
    clock = FakeClock()
    vendor = Vendor(clock)
    vendor.gate = asyncio.Event()
    tm = manager(clock, vendor)
    tasks = [asyncio.create_task(tm.get()) for _ in range(5)]
    await asyncio.sleep(0)
    vendor.gate.set()
    tokens = await asyncio.gather(*tasks)
    assert {t.value for t in tokens} == {"tok-1"}
    assert vendor.logins == 1


async def test_an_expired_token_means_a_fresh_login_not_a_renewal():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor)
    await tm.get()
    clock.advance(LIFETIME + timedelta(seconds=1))
    token = await tm.get()
    assert token.value == "tok-2" and vendor.logins == 2 and vendor.renewals == 0


async def test_a_refused_renewal_falls_back_to_login():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor)
    await tm.get()
    vendor.renew_error = AuthError("token revoked")
    clock.advance(timedelta(minutes=70))
    token = await tm.get()
    assert token.value == "tok-2" and vendor.logins == 2 and vendor.renewals == 1


async def test_a_network_failure_while_renewing_early_keeps_the_valid_token():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor)
    first = await tm.get()
    vendor.renew_error = BrokerError("connection reset")
    clock.advance(timedelta(minutes=70))
    assert (await tm.get()) is first
    clock.advance(timedelta(minutes=11))
    token = await tm.get()  # expired now: a full login, which works
    assert token.value == "tok-2" and vendor.logins == 2


async def test_invalidate_logs_in_again_unless_already_replaced():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor)
    first = await tm.get()
    second = await tm.invalidate(first)
    assert second.value == "tok-2" and vendor.logins == 2
    again = await tm.invalidate(first)  # a late 401 for the old token: no extra login
    assert again is second and vendor.logins == 2


async def test_short_lived_tokens_renew_at_half_life_not_in_a_loop():
    clock = FakeClock()
    vendor = Vendor(clock)
    tm = manager(clock, vendor, renew_ahead=timedelta(hours=2))
    token = await tm.get()
    assert tm.renew_at() == token.expires_at - LIFETIME / 2


async def test_background_loop_renews_when_the_clock_reaches_the_window():
    clock = FakeClock()
    vendor = Vendor(clock)
    changes = []
    renewed = asyncio.Event()

    def on_change(token: Token) -> None:
        changes.append(token)
        if len(changes) > 1:
            renewed.set()

    tm = manager(clock, vendor, on_change=on_change, check_interval=30)
    await tm.get()
    tm.start()
    try:
        await clock.wait_for_sleeper()
        clock.advance(timedelta(minutes=66))
        await asyncio.wait_for(renewed.wait(), 5)
        assert [t.value for t in changes] == ["tok-1", "tok-2"]
        assert tm.expires_in() == LIFETIME
    finally:
        await tm.stop()


async def test_background_loop_reports_errors_and_retries():
    clock = FakeClock()
    vendor = Vendor(clock)
    errors = []
    failed = asyncio.Event()
    renewed = asyncio.Event()

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        failed.set()

    tm = manager(clock, vendor, on_error=on_error, on_change=lambda t: renewed.set())
    await tm.get()
    renewed.clear()
    vendor.renew_error = BrokerError("boom")
    clock.advance(timedelta(minutes=66))
    tm.start()
    try:
        await asyncio.wait_for(failed.wait(), 5)
        vendor.renew_error = None
        wait = await clock.wait_for_sleeper()
        clock.advance(wait)
        await asyncio.wait_for(renewed.wait(), 5)
        assert tm.renewals == 1
        assert str(errors[0]) == "boom"
    finally:
        await tm.stop()


def test_token_repr_never_shows_the_value():
    clock = FakeClock()
    t = Token(value="s3cr3t-token-value", expires_at=clock.now() + LIFETIME, issued_at=clock.now())
    assert "s3cr3t" not in repr(t)


def test_token_times_must_be_aware():
    from datetime import datetime

    with pytest.raises(ValueError, match="aware"):
        Token(value="x", expires_at=datetime(2026, 1, 1), issued_at=datetime(2026, 1, 1))


class RefreshVendor(Vendor):
    """OAuth-like: the refresh works after the access token expired (its refresh token lives on)."""

    async def renew(self, token: Token) -> Token:
        self.renewals += 1
        return self._issue()


async def test_renew_expired_refreshes_a_lapsed_token_instead_of_logging_in(tmp_path):
    from tterm.brokers.common.token_store import TokenStore

    clock = FakeClock()
    vendor = RefreshVendor(clock)
    store = TokenStore(tmp_path / "t.json", owner="o")
    first = await manager(clock, vendor, renew_expired=True, store=store).get()
    clock.advance(LIFETIME + timedelta(minutes=5))  # a restart long after the access token lapsed
    fresh = manager(clock, vendor, renew_expired=True, store=store)
    token = await fresh.get()
    assert token.value != first.value and vendor.logins == 1 and vendor.renewals == 1
    assert fresh.renewals == 1 and fresh.logins == 0
    # Without the flag the same state is a new login (a person, for a browser login).
    clock.advance(LIFETIME + timedelta(minutes=5))
    plain = manager(clock, vendor, store=store)
    await plain.get()
    assert vendor.logins == 2 and plain.logins == 1


async def test_renew_expired_answers_a_refused_token_with_a_refresh():
    clock = FakeClock()
    vendor = RefreshVendor(clock)
    tm = manager(clock, vendor, renew_expired=True)
    first = await tm.get()
    again = await tm.invalidate(first)
    assert again.value != first.value and vendor.logins == 1 and vendor.renewals == 1
