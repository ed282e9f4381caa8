"""Plain ``tterm`` imports no network stack it does not use before its first frame (start-up time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_terminal_path_imports_no_http_stack_and_no_replay() -> None:
    code = (
        "import sys, tterm.cli, tterm.runtime, tterm.tui.app\n"
        "from tterm.brokers.common.settings import BrokerConfigError\n"
        "from tterm.brokers.common import token_path\n"
        "loaded = [m for m in ('aiohttp', 'httpx', 'websockets', 'tterm.hub.service', 'tterm.risk.replay')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_broker_plumbing_names_still_import_from_the_package() -> None:
    from tterm.brokers import common
    from tterm.brokers.common import HttpClient, TokenManager

    assert HttpClient.__module__ == "tterm.brokers.common.http"
    assert TokenManager.__module__ == "tterm.brokers.common.tokens"
    assert set(common.__all__) <= set(dir(common)) | set(common._WHERE)
