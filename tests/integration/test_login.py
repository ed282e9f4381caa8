"""Interactive login: the OAuth helper end to end against a fake authorization server, a test-only
broker that uses it, and ``tterm login`` through its entry point with the address on stdin."""

from __future__ import annotations

import io
import os
import re
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.fakes.oauth import SPEC, FakeOAuthServer, OAuthDemoBroker, ServerThread, browser_approves, build
from tterm import cli
from tterm.brokers import registry
from tterm.brokers.common.oauth import OAuthApp, OAuthLogin
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token
from tterm.core.broker import LoginError, LoginRequired
from tterm.core.models import ConnectionState, ConnectionStatus
from tterm.core.redact import Redactor


@pytest.fixture
def demo_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-only adapter joins the registry the way a real one does: one entry."""
    monkeypatch.setitem(registry.ADAPTERS, SPEC.type, SPEC)


@pytest.fixture
async def server():
    s = FakeOAuthServer()
    await s.start()
    yield s
    await s.stop()


def _login(server: FakeOAuthServer, tmp_path: Path, clock: FakeClock | None = None) -> OAuthLogin:
    app = OAuthApp(
        authorize_url=f"{server.url}/authorize",
        token_url=f"{server.url}/token",
        client_id=server.client_id,
        client_secret=server.client_secret,
        redirect_uri=server.redirect_uri,
        login_lifetime=timedelta(days=7),
    )
    store = TokenStore(token_path(tmp_path, "sw"), owner="demo")
    return OAuthLogin("sw", app, store, title="Demo", clock=clock, redactor=Redactor())


async def _browser(url: str) -> str:
    import asyncio

    return await asyncio.to_thread(browser_approves, url)


# =========================================================================== the helper


async def test_the_pasted_redirect_is_exchanged_and_the_tokens_stored(server, tmp_path):
    flow = _login(server, tmp_path)
    prompt = flow.start()
    assert prompt.url.startswith(f"{server.url}/authorize?response_type=code&client_id=APPKEY123")
    assert "redirect_uri=https%3A%2F%2F127.0.0.1%3A8182%2F" in prompt.url and f"state={prompt.state}" in prompt.url
    assert len(prompt.state) >= 32 and flow.start().state != prompt.state  # random per attempt
    pasted = await _browser(prompt.url)
    assert "%40" in pasted  # Schwab sends the code's trailing '@' encoded
    result = await flow.complete(prompt, f"  {pasted}\n")
    # The code went to the token endpoint decoded, with the client as HTTP Basic and a form body.
    assert server.exchanged_codes and server.exchanged_codes[0].endswith("@")
    assert server.token_requests[0]["grant_type"] == "authorization_code"
    assert "client_secret" not in server.token_requests[0]
    stored = flow.store.load()
    assert stored is not None and stored.value in server.access and stored.extra["refresh_token"] in server.refresh
    assert stat.S_IMODE(flow.store.path.stat().st_mode) == 0o600
    assert result.expires_at is not None and result.expires_at - stored.issued_at == timedelta(days=7)
    assert OAuthLogin.login_expires_at(stored) == result.expires_at
    # The refresh renews the access token; the browser login's expiry does not move.
    renewed = await flow.refresh(stored)
    assert renewed.value != stored.value and renewed.value in server.access
    assert OAuthLogin.login_expires_at(renewed) == result.expires_at
    server.revoke_refresh_tokens()
    with pytest.raises(LoginRequired, match=r"refused the refresh token .*invalid_grant.*tterm login sw"):
        await flow.refresh(renewed)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda url, p: "", "nothing was pasted"),
        (lambda url, p: "code=abc&state=x", "not a web address"),
        (lambda url, p: url.replace("https://127.0.0.1:8182/", "https://evil.example/"), "not to the redirect address"),
        (lambda url, p: url.replace("127.0.0.1:8182/", "127.0.0.1:8182/other"), "not to the redirect address"),
        (lambda url, p: url.replace("https://", "http://"), "not to the redirect address"),
        (lambda url, p: re.sub(r"state=[^&]+", "state=forged", url), "different state"),
        (lambda url, p: re.sub(r"&?state=[^&]+", "", url), "has no state"),
        (lambda url, p: re.sub(r"code=[^&]+&?", "", url), "has no code"),
        (
            lambda url, p: url.split("?")[0] + f"?error=access_denied&state={p.state}",
            "refused the login: access_denied",
        ),
    ],
)
async def test_a_wrong_paste_is_refused_with_what_was_wrong_and_the_old_tokens_stay(server, tmp_path, tamper, reason):
    flow = _login(server, tmp_path)
    old = Token("old-access", FakeClock().now() + timedelta(days=3650), FakeClock().now(), {"refresh_token": "old"})
    await flow.store.save(old)
    prompt = flow.start()
    pasted = await _browser(prompt.url)
    with pytest.raises(LoginError, match=reason):
        await flow.complete(prompt, tamper(pasted, prompt))
    assert flow.store.load() == old
    assert server.exchanged_codes == []  # nothing reached the token endpoint


async def test_a_refused_exchange_and_a_stale_prompt_change_nothing(server, tmp_path):
    clock = FakeClock()
    flow = _login(server, tmp_path, clock)
    prompt = flow.start()
    pasted = await _browser(prompt.url)
    server.client_secret = "rotated-on-the-vendor-site"
    with pytest.raises(LoginError, match=r"Demo refused the login code \(invalid_client: client authentication"):
        await flow.complete(prompt, pasted)
    assert flow.store.load() is None
    assert "app-secret" not in str(server.refused)
    late = flow.start()
    clock.advance(timedelta(minutes=11))
    with pytest.raises(LoginError, match="more than 10 minutes ago; start it again"):
        await flow.complete(late, await _browser(late.url))


# =========================================================================== a broker that needs a person


async def test_the_demo_broker_needs_a_login_then_connects_with_the_stored_one(server, tmp_path):
    broker = build("sw", server.options(), server.secrets(), instruments=None, clock=None, data_dir=tmp_path)
    assert isinstance(broker, OAuthDemoBroker) and broker.capabilities.interactive_login
    with pytest.raises(LoginRequired, match="tterm login sw"):
        await broker.connect()
    assert broker.connection_state is ConnectionState.NEEDS_LOGIN
    flow = broker.login_flow()
    prompt = flow.start()
    await flow.complete(prompt, await _browser(prompt.url))
    again = build("sw", server.options(), server.secrets(), instruments=None, clock=None, data_dir=tmp_path)
    await again.connect()
    status = again.status()
    assert status.state is ConnectionState.CONNECTED and status.auth_needs_person is True
    assert status.auth_label == "login" and status.auth_expires_at is not None
    events: list[Any] = []
    again.mark_closed()
    async for e in again.events():
        events.append(e)
    assert any(isinstance(e, ConnectionStatus) and e.auth_needs_person for e in events)


# =========================================================================== tterm login, the command


def _config(tmp_path: Path, server: FakeOAuthServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TTERM_SW_CLIENT_ID", server.client_id)
    monkeypatch.setenv("TTERM_SW_CLIENT_SECRET", server.client_secret)
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir(parents=True)
    opts = ", ".join(f'{k} = "{v}"' for k, v in server.options().items())
    path.write_text(
        f'[brokers.sw]\ntype = "oauth-demo"\nenabled = false\noptions = {{ {opts} }}\n'
        '[brokers.tv]\ntype = "tradovate"\nenabled = false\nusername = "me"\n'
    )
    return path


class Person(io.StringIO):
    """stdin for ``tterm login``: reads the address tterm printed, approves it in a "browser" and
    pastes where the browser went (``tamper`` changes it first)."""

    def __init__(self, out: io.StringIO, tamper: Any = None) -> None:
        super().__init__()
        self.out = out
        self.tamper = tamper

    def readline(self, *_: Any) -> str:  # type: ignore[override]
        url = re.search(r"^\s+(http\S+/authorize\?\S+)$", self.out.getvalue(), re.M)
        assert url is not None, self.out.getvalue()
        pasted = browser_approves(url.group(1))
        return (self.tamper(pasted) if self.tamper else pasted) + "\n"


def test_tterm_login_prints_the_url_and_takes_the_pasted_address(tmp_path, monkeypatch, capsys, demo_type):
    with ServerThread(FakeOAuthServer()) as server:
        path = _config(tmp_path, server, monkeypatch)
        path.write_text(path.read_text().replace("enabled = false", "enabled = true", 1))
        monkeypatch.setenv("COLORTERM", "truecolor")
        assert cli.main(["doctor"]) == 1
        assert "broker 'sw' needs a browser login and has none\n    fix: tterm login sw" in capsys.readouterr().out
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stdin", Person(out))
        assert cli.main(["login", "sw"]) == 0
        text = out.getvalue()
        assert "1. Open this address in a web browser" in text and "Address: " in text
        assert "sw: logged in to OAuth demo; the login lasts until" in text
        assert "tterm warns a day before it ends" in text
        path = token_path(tmp_path / "data", "sw")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = TokenStore(path, owner=f"{server.client_id}@{server.url}/token").load()
        assert stored is not None and stored.value in server.access
        assert server.client_secret not in text and stored.value not in text
        monkeypatch.setattr("sys.stdout", io.StringIO())
        assert cli.main(["doctor"]) == 0

        # A pasted address from another attempt: refused, exit 1, the stored login untouched.
        out2 = io.StringIO()
        monkeypatch.setattr("sys.stdout", out2)
        monkeypatch.setattr("sys.stdin", Person(out2, lambda u: re.sub(r"state=[^&]+", "state=other", u)))
        assert cli.main(["login", "sw"]) == 1
        err = capsys.readouterr().err
        assert "login refused: the address carries a different state" in err
        assert "Nothing changed: the tokens held before stay in force." in err
        assert TokenStore(path, owner=f"{server.client_id}@{server.url}/token").load() == stored


def test_tterm_login_for_a_broker_that_needs_no_person_says_so(tmp_path, monkeypatch, capsys, demo_type):
    with ServerThread(FakeOAuthServer()) as server:
        _config(tmp_path, server, monkeypatch)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert cli.main(["login", "tv"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("tv: Tradovate needs no browser login") and "Nothing to do." in out
        assert cli.main(["login", "paper"]) == 0
        assert cli.main(["login", "nope"]) == 2
        assert "no broker named 'nope' in the config (brokers: sw, tv)" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # nothing pasted (stdin closed)
        assert cli.main(["login", "sw"]) == 1
        assert "no address was pasted; nothing changed" in capsys.readouterr().err
    assert not os.path.exists(token_path(tmp_path / "data", "sw"))
