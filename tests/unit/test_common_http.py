"""HttpClient against a loopback aiohttp server: bearer, limiter, JSON, and which failures may have been sent."""

import asyncio
import socket

import pytest
from aiohttp import web

from tterm.brokers.common.http import BadResponse, ConnectionFailed, HttpClient
from tterm.brokers.common.ratelimit import RateLimiter, Window


@pytest.fixture
async def server():
    release = asyncio.Event()

    async def echo(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        return web.json_response(
            {"auth": request.headers.get("Authorization"), "query": dict(request.query), "body": body}
        )

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>oops</html>", status=502)

    async def limited(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "3"})

    app = web.Application()
    app.router.add_route("*", "/v1/echo", echo)
    app.router.add_get("/v1/slow", slow)
    app.router.add_get("/v1/text", text)
    app.router.add_get("/v1/limited", limited)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    release.set()
    await runner.cleanup()


async def test_json_round_trip_with_bearer_and_query(server):
    client = HttpClient(server)
    try:
        resp = await client.request("POST", "/echo", params={"a": "1"}, json={"x": 2}, bearer="tok")
        assert resp.ok and resp.status == 200
        assert resp.json() == {"auth": "Bearer tok", "query": {"a": "1"}, "body": {"x": 2}}
        resp = await client.request("GET", "/echo")
        assert resp.json()["auth"] is None
    finally:
        await client.aclose()


async def test_non_json_and_empty_bodies_raise_bad_response(server):
    client = HttpClient(server)
    try:
        resp = await client.request("GET", "/text")
        assert resp.status == 502
        with pytest.raises(BadResponse, match="not JSON"):
            resp.json()
        resp = await client.request("GET", "/limited")
        assert resp.status == 429 and resp.retry_after() == 3.0
        with pytest.raises(BadResponse, match="empty response body"):
            resp.json()
    finally:
        await client.aclose()


async def test_a_timeout_may_have_been_sent(server):
    client = HttpClient(server, timeout=0.2)
    try:
        with pytest.raises(ConnectionFailed) as err:
            await client.request("GET", "/slow")
        assert err.value.maybe_sent is True
    finally:
        await client.aclose()


async def test_a_refused_connection_was_never_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ConnectionFailed) as err:
            await client.request("GET", "/echo")
        assert err.value.maybe_sent is False
        assert "could not connect" in str(err.value)
    finally:
        await client.aclose()


async def test_the_limiter_counts_every_request(server):
    limiter = RateLimiter([Window(1000, 1.0)], per_key={"echo": [Window(10, 60)]})
    client = HttpClient(server, limiter=limiter)
    try:
        for _ in range(3):
            await client.request("GET", "/echo", limit_key="echo")
        assert limiter.acquired == 3 and client.requests == 3
    finally:
        await client.aclose()
