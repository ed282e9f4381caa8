"""A second process on a Schwab broker's token file, for the two-process test.

``python -m tests.fakes.schwab_token_worker DATA_DIR API_URL APP_KEY APP_SECRET``: builds the
adapter's own token store, OAuth login and token manager (``tterm.brokers.schwab.auth``) on the
data dir, gets a token good for now (refreshing the stored login if it is due), uses it once on
the API, and prints one JSON line: ``ok``, the token it ended with, and whether it refreshed or
adopted the token another process had just refreshed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx

from tterm.brokers.common.clock import SystemClock
from tterm.brokers.schwab.auth import oauth_login, token_manager, token_store
from tterm.brokers.schwab.config import SchwabCredentials, SchwabSettings
from tterm.core.redact import Redactor


async def run(data_dir: str, api_url: str, key: str, secret: str) -> dict[str, object]:
    options = {"environment": "live", "api_url": api_url, "callback_url": "https://127.0.0.1:8182"}
    settings = SchwabSettings.from_options(options, broker="sw")
    creds = SchwabCredentials(app_key=key, app_secret=secret)
    redactor, clock = Redactor(), SystemClock()
    store = token_store("sw", Path(data_dir), creds, settings, redactor)
    tokens = token_manager(
        "sw", oauth_login("sw", creds, settings, store, clock=clock, redactor=redactor), store, settings, clock=clock
    )
    try:
        token = await tokens.get()
    except Exception as exc:  # reported, not raised: the test reads stdout
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc), "token": None, "how": "failed"}
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        resp = await http.get("/trader/v1/accounts/accountNumbers", headers={"Authorization": f"Bearer {token.value}"})
    how = "refreshed" if tokens.renewals else "adopted" if tokens.adopted else "login"
    return {"ok": resp.status_code == 200, "token": token.value, "how": how}


def main(argv: list[str]) -> None:
    print(json.dumps(asyncio.run(run(*argv[:4]))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
