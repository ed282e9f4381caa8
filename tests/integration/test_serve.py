"""`tterm serve` in a browser's place: the page loads without any public host (the font comes
from the server itself), and a websocket session stays up for 30 s and keeps showing the
terminal. It used to end after about 5 s: the terminal-lost check asked whether stdin was a TTY,
which it never is under textual-serve."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="textual-serve's web driver needs POSIX signals")

SESSION_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served(tmp_path: Path):
    cfg, data = tmp_path / "cfg", tmp_path / "data"
    cfg.mkdir()
    (cfg / "config.toml").write_text("[paper]\nseed = 5\nquote_hz = 2.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL_", "SSH_"))}
    env.update(TTERM_CONFIG_DIR=str(cfg), TTERM_DATA_DIR=str(data))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tterm.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(base + "/") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "tterm serve did not answer"
                await asyncio.sleep(0.1)
            yield base, http
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_the_page_needs_no_public_host(served) -> None:
    base, http = served
    async with http.get(base + "/") as resp:
        page = await resp.text()
    assert "googleapis" not in page
    external = [u for u in re.findall(r"""(?:href|src)=["']?([^"' >]+)""", page) if not u.startswith(base)]
    assert [u for u in external if u.startswith(("http:", "https:", "//"))] == []
    fonts = re.findall(r"""url\(["']?([^"')]+\.ttf)""", page)
    assert fonts, "no @font-face in the page"
    for url in fonts:
        async with http.get(url) as resp:
            assert resp.status == 200, url
            assert (await resp.read())[:4] == b"\x00\x01\x00\x00"  # a TrueType font


async def test_a_browser_session_stays_up_and_keeps_drawing(served) -> None:
    base, http = served
    received: list[tuple[float, bytes]] = []
    async with http.ws_connect(base.replace("http", "ws") + "/ws?width=120&height=40", heartbeat=10) as ws:
        start = time.monotonic()
        while (left := SESSION_SECONDS - (time.monotonic() - start)) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                pytest.fail(f"the session ended after {time.monotonic() - start:.1f}s")
            if msg.type is aiohttp.WSMsgType.BINARY:
                received.append((time.monotonic() - start, msg.data))
        assert not ws.closed
        output = b"".join(data for _, data in received)
        assert b"MES1!" in output and b"PAPER" in output  # the watchlist and the status bar
        # Still drawing at the end (the clock and the simulated quotes move every second).
        assert any(at > SESSION_SECONDS - 5 for at, _ in received)
