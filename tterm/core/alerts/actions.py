"""What an alert does besides the toast: POST its JSON to a webhook, or run a command.

Both are named in the config (``[alerts.webhooks]``, ``[alerts.commands]``) and an alert refers
to a name, never to a URL or a command line: an alert created over the hub's wire can only pick
what the hub's owner configured, so nobody with an API token can make the hub run anything else.

A webhook is ``POST <url>`` with the alert as a JSON body (``Content-Type: application/json``);
any 2xx answer is success. A command runs without a shell (its argv as configured), with the same
JSON on stdin and ``TTERM_ALERT_ID``, ``TTERM_ALERT_SYMBOL``, ``TTERM_ALERT_PRICE`` and
``TTERM_ALERT_TEXT`` in its environment; exit status 0 is success. Either is given
``timeout_seconds``. A failure raises :class:`AlertActionError` with a reason that names the
webhook or command but never its URL (a URL may carry a token: the journal only ever holds the
name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tterm.core.alerts.model import AlertFired


class AlertActionError(Exception):
    """A webhook-out or command that failed; the message is safe to journal and show."""


def payload(fired: AlertFired) -> dict[str, Any]:
    """The alert as JSON (prices as strings, so they arrive exactly)."""
    a = fired.alert
    return {
        "type": "tterm.alert",
        "alert_id": a.alert_id,
        "symbol": a.symbol,
        "listed": a.listed or a.symbol,
        "field": a.field.value,
        "op": a.op.value,
        "level": str(a.price),
        "price": str(fired.price),
        "fired_at": fired.ts.isoformat(),
        "created_at": a.created_at.isoformat(),
        "note": a.note,
        "text": fired.text,
    }


@dataclass(slots=True)
class AlertActions:
    """The configured webhooks (name -> URL) and commands (name -> argv)."""

    webhooks: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, Sequence[str]] = field(default_factory=dict)
    timeout: float = 5.0

    def check(self, webhook: str, command: str) -> None:
        """Raise ValueError when an alert names a webhook or command that is not configured."""
        if webhook and webhook not in self.webhooks:
            known = ", ".join(sorted(self.webhooks)) or "none configured"
            raise ValueError(f"no webhook named {webhook!r} under [alerts.webhooks] (webhooks: {known})")
        if command and command not in self.commands:
            known = ", ".join(sorted(self.commands)) or "none configured"
            raise ValueError(f"no command named {command!r} under [alerts.commands] (commands: {known})")

    async def post(self, name: str, fired: AlertFired) -> str:
        """POST the alert to webhook ``name``; returns what happened (``HTTP 200``)."""
        import aiohttp  # here, not at the top: the engine imports this module, few alerts post

        url = self.webhooks[name]
        # aiohttp, not httpx: httpx logs every request's URL at INFO, and a URL may be a token.
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session,
                session.post(url, json=payload(fired)) as response,
            ):
                status = response.status
        except TimeoutError:
            raise AlertActionError(f"webhook {name}: no answer within {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise AlertActionError(f"webhook {name}: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise AlertActionError(f"webhook {name}: HTTP {status}")
        return f"HTTP {status}"

    async def run(self, name: str, fired: AlertFired) -> str:
        """Run command ``name`` with the alert on stdin; returns what happened (``exit 0``)."""
        argv = list(self.commands[name])
        body = json.dumps(payload(fired)).encode()
        env = {
            **os.environ,
            "TTERM_ALERT_ID": str(fired.alert.alert_id),
            "TTERM_ALERT_SYMBOL": fired.alert.symbol,
            "TTERM_ALERT_PRICE": str(fired.price),
            "TTERM_ALERT_TEXT": fired.text,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise AlertActionError(f"command {name}: cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        try:
            _, err = await asyncio.wait_for(proc.communicate(body), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise AlertActionError(f"command {name}: still running after {self.timeout:g} s; killed") from None
        if proc.returncode != 0:
            last = (err or b"").decode(errors="replace").strip().splitlines()
            said = f": {last[-1][:200]}" if last else ""
            raise AlertActionError(f"command {name}: exit status {proc.returncode}{said}")
        return "exit 0"
