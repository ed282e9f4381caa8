"""Helpers for the fake Schwab tests: a login done the way a user's browser and a client do it."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes.schwab import FakeSchwab


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


async def code_from_browser(fake: FakeSchwab, http: httpx.AsyncClient, state: str = "s1") -> str:
    location = await fake.browse(fake.authorize_url(state=state))
    assert location.startswith(fake.callback_urls[0] + "?code=") and location.endswith(f"&state={state}")
    assert "%40" in location  # the raw redirect, as the user pastes it
    return parse_qs(urlsplit(location).query)["code"][0]  # parse_qs decodes %40 to "@"


async def exchange(fake: FakeSchwab, http: httpx.AsyncClient, code: str, **over: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": fake.callback_urls[0]} | over
    return await http.post("/v1/oauth/token", data=form, headers=basic(fake.app_key, fake.app_secret))


async def login(fake: FakeSchwab, http: httpx.AsyncClient) -> dict[str, Any]:
    r = await exchange(fake, http, await code_from_browser(fake, http))
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}
