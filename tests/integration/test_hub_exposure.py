"""What the network can reach (issue 17, item 5; extends test_hub_remote's wrong-token test and
test_hub_cli's serve test): the hub binds 127.0.0.1 unless configured otherwise, the WebSocket API
refuses every request without its exact token (before any upgrade, whatever else is sent),
/health tells a stranger nothing, and ``tterm serve`` refuses any address but loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from tests.integration.hub_support import TOKEN, hub_rig, hub_settings
from tterm.cli import main
from tterm.config import HubSettings


def test_the_hub_binds_loopback_by_default() -> None:
    assert HubSettings().host == "127.0.0.1"
    assert HubSettings.model_validate({"strategies": {}}).host == "127.0.0.1"


def _other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


async def test_a_started_hub_listens_on_loopback_only(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(host="127.0.0.1")) as rig:
        (site,) = rig.hub.server._runner.sites  # type: ignore[union-attr]
        sockets = site._server.sockets
        assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}
        other = _other_address()
        if other is not None:  # from the machine's own LAN address, nothing answers
            with pytest.raises(OSError):
                socket.create_connection((other, rig.hub.port), timeout=1).close()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Api-Token": TOKEN},
    ],
)
async def test_the_websocket_api_refuses_anything_but_its_token(tmp_path: Path, headers: dict[str, str]) -> None:
    async with hub_rig(tmp_path) as rig:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{rig.url}/ws?token={TOKEN}", headers=headers)
            assert err.value.status == 401
            async with http.get(f"{rig.url}/health", headers=headers) as resp:
                body = await resp.json()
            assert set(body) == {"ok", "status", "version"}  # no accounts, no positions, no uptime
            assert not rig.hub.server._clients
        # With the token, it upgrades (the refusals above were about the token, nothing else).
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{rig.url}/ws", headers={"Authorization": f"Bearer {TOKEN}"})
            await ws.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "example.com", "127.0.0.1.nip.io"])
def test_serve_refuses_every_address_but_loopback(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "d"))
    assert main(["serve", "--host", host]) == 2
    assert f"refusing to serve on {host}" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything was started or written
