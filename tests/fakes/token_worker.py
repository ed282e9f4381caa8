"""A separate process sharing a token file, for the token store's two-process tests.

``python -m tests.fakes.token_worker renew STORE VENDOR_URL SECONDS LIFETIME AHEAD``: a
TokenManager with a TokenStore on STORE keeps a token from the vendor at VENDOR_URL for SECONDS
(tokens last LIFETIME seconds, renewed AHEAD seconds before expiry), using it all the time; prints
one JSON line with what it did.

``python -m tests.fakes.token_worker hold STORE``: takes the store's lock, prints ``locked``, and
holds it until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tterm.brokers.common.token_store import TokenStore
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.core.broker import AuthError

OWNER = "trader@vendor.test"


def _token(data: dict[str, object]) -> Token:
    now = datetime.now(UTC)
    return Token(value=str(data["token"]), expires_at=now + timedelta(seconds=float(data["expires_in"])), issued_at=now)  # type: ignore[arg-type]


async def renew_loop(store_path: str, url: str, seconds: float, lifetime: float, ahead: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def login() -> Token:
            resp = await http.post("/login", json={"lifetime": lifetime})
            return _token(resp.json())

        async def renew(token: Token) -> Token:
            resp = await http.post("/renew", json={"token": token.value, "lifetime": lifetime})
            if resp.status_code != 200:
                raise AuthError(f"renewal refused: {resp.text}")
            return _token(resp.json())

        manager = TokenManager(
            login=login,
            renew=renew,
            renew_ahead=timedelta(seconds=ahead),
            check_interval=0.02,
            store=TokenStore(Path(store_path), owner=OWNER),
        )
        uses = refused = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            token = await manager.get()
            resp = await http.post("/use", json={"token": token.value})
            uses += 1
            refused += resp.status_code != 200
            await asyncio.sleep(0.005)
        held = manager.token
        print(
            json.dumps(
                {
                    "logins": manager.logins,
                    "renewals": manager.renewals,
                    "adopted": manager.adopted,
                    "uses": uses,
                    "refused": refused,
                    "last": held.value if held else None,
                }
            ),
            flush=True,
        )


async def hold(store_path: str) -> None:
    store = TokenStore(Path(store_path), owner=OWNER)
    async with store.locked():
        print("locked", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    if argv[0] == "renew":
        asyncio.run(renew_loop(argv[1], argv[2], float(argv[3]), float(argv[4]), float(argv[5])))
    elif argv[0] == "hold":
        asyncio.run(hold(argv[1]))
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
