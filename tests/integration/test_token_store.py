"""TokenStore: renewed tokens persisted 0600 under an OS file lock, shared by real processes.

The vendor here is strict the way OAuth refresh tokens are: a token can be renewed once; renewing
a spent one is refused (the lockout two uncoordinated processes cause). Tokens stay usable until
they expire.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
import sys
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from tests.fakes import FakeClock
from tests.fakes.token_worker import OWNER
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.core.broker import AuthError
from tterm.core.redact import Redactor

REPO = Path(__file__).resolve().parents[2]


class StrictVendor:
    """Issues tokens; each can be renewed once; counts refusals (the lockouts)."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[float, bool]] = {}  # value -> (expires at, spent)
        self.logins = self.renewals = self.refused_renewals = self.refused_uses = 0
        self.latest = ""
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _issue(self, lifetime: float) -> dict[str, object]:
        value = "tok-" + secrets.token_hex(8)
        self.tokens[value] = (asyncio.get_running_loop().time() + lifetime, False)
        self.latest = value
        return {"token": value, "expires_in": lifetime}

    async def login(self, request: web.Request) -> web.Response:
        self.logins += 1
        return web.json_response(self._issue(float((await request.json())["lifetime"])))

    async def renew(self, request: web.Request) -> web.Response:
        body = await request.json()
        entry = self.tokens.get(body["token"])
        now = asyncio.get_running_loop().time()
        if entry is None or entry[1] or entry[0] <= now:
            self.refused_renewals += 1
            return web.Response(status=401, text="token spent or expired")
        self.tokens[body["token"]] = (entry[0], True)
        self.renewals += 1
        return web.json_response(self._issue(float(body["lifetime"])))

    async def use(self, request: web.Request) -> web.Response:
        entry = self.tokens.get((await request.json())["token"])
        if entry is None or entry[0] <= asyncio.get_running_loop().time():
            self.refused_uses += 1
            return web.Response(status=401)
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.post("/login", self.login), web.post("/renew", self.renew), web.post("/use", self.use)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _worker(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.token_worker", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


# =========================================================================== one process


def _tok(clock: FakeClock, value: str, minutes: float = 80, **extra: object) -> Token:
    now = clock.now()
    return Token(value=value, expires_at=now + timedelta(minutes=minutes), issued_at=now, extra=extra)


async def test_a_stored_token_round_trips_with_mode_0600_and_is_masked(tmp_path):
    clock = FakeClock()
    path = token_path(tmp_path, "tv")
    redactor = Redactor()
    store = TokenStore(path, owner="trader1@demo", redactor=redactor)
    assert store.load() is None
    token = _tok(clock, "access-0123456789abcdef", md_token="md-0123456789abcdef", user_id=7)
    await store.save(token)
    assert path == tmp_path / "tokens" / "tv.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    fresh_redactor = Redactor()
    again = TokenStore(path, owner="trader1@demo", redactor=fresh_redactor).load()
    assert again == token and again.extra == {"md_token": "md-0123456789abcdef", "user_id": 7}
    assert fresh_redactor.scrub("x access-0123456789abcdef md-0123456789abcdef") == "x **** ****"
    # Another login's token is never used, and a broken file is treated as empty.
    assert TokenStore(path, owner="someone-else@demo").load() is None
    path.write_text("{not json access-0123456789abcdef")
    assert store.load() is None
    await store.clear()
    assert not path.exists()
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == []


async def test_a_second_manager_adopts_the_stored_token_instead_of_logging_in(tmp_path):
    clock = FakeClock()
    issued: list[str] = []

    async def login() -> Token:
        issued.append(f"login-{len(issued)}")
        return _tok(clock, issued[-1])

    async def renew(token: Token) -> Token:
        issued.append(f"renew-{len(issued)}")
        return _tok(clock, issued[-1])

    def manager() -> TokenManager:
        store = TokenStore(token_path(tmp_path, "tv"), owner="u@h")
        return TokenManager(login=login, renew=renew, clock=clock, store=store)

    first, second = manager(), manager()
    t1 = await first.get()
    assert (await second.get()).value == t1.value and second.adopted == 1 and issued == ["login-0"]
    clock.advance(timedelta(minutes=70))  # both are due now: one renews, the other adopts
    t2 = await first.get()
    assert (await second.get()).value == t2.value == "renew-1"
    assert (first.renewals, second.renewals, second.adopted) == (1, 0, 2)
    # A refused token: the other manager's newer token is adopted, no new session.
    clock.advance(timedelta(minutes=70))
    await second.refresh()
    assert (await first.invalidate(t2)).value == second.token.value == "renew-2"  # type: ignore[union-attr]
    assert issued == ["login-0", "renew-1", "renew-2"]


async def test_a_refused_login_leaves_the_stored_token_alone(tmp_path):
    clock = FakeClock()
    store = TokenStore(token_path(tmp_path, "tv"), owner="u@h")
    await store.save(_tok(clock, "still-good", minutes=1))

    async def login() -> Token:
        raise AuthError("password refused")

    tm = TokenManager(login=login, renew=None, clock=clock, store=store)
    clock.advance(timedelta(minutes=2))  # the stored one has expired: a login is needed
    try:
        await tm.get()
    except AuthError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the login should have failed")
    assert store.load() is not None and store.load().value == "still-good"  # type: ignore[union-attr]


# =========================================================================== two real processes


async def test_two_processes_renew_one_token_chain_without_a_lockout_or_a_lost_renewal(tmp_path):
    vendor = StrictVendor()
    await vendor.start()
    store_path = token_path(tmp_path, "shared")
    try:
        workers = [await _worker("renew", str(store_path), vendor.url, "2.5", "0.6", "0.3") for _ in range(2)]
        outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 60)
    finally:
        await vendor.stop()
    results = []
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert vendor.refused_renewals == 0, "a spent token was renewed again: the processes locked each other out"
    assert vendor.refused_uses == 0 and all(r["refused"] == 0 and r["uses"] > 10 for r in results)
    assert vendor.logins == 1  # one session for both processes
    assert vendor.renewals == sum(r["renewals"] for r in results) >= 4
    assert all(r["renewals"] + r["adopted"] > 0 for r in results)  # both took part
    stored = TokenStore(store_path, owner=OWNER).load()
    assert stored is not None and stored.value == vendor.latest  # no renewal was lost


async def test_a_crashed_holder_never_locks_the_others_out(tmp_path):
    store_path = token_path(tmp_path, "shared")
    holder = await _worker("hold", str(store_path))
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.decode().strip() == "locked"
        store = TokenStore(store_path, owner=OWNER)
        waiting = asyncio.create_task(store.save(Token("mine", FakeClock().now() + timedelta(days=3650),
                                                       FakeClock().now())))  # fmt: skip
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done, "the lock of another process was not respected"
        holder.kill()  # the OS drops a dead process's lock
        await holder.wait()
        await asyncio.wait_for(waiting, 10)
        stored = store.load()
        assert stored is not None and stored.value == "mine"
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
