"""The broker registry: every adapter declares itself completely, and unknown types are refused by name."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from tterm.brokers.common.adapter import Credentials
from tterm.brokers.registry import ADAPTERS, UnknownBrokerType, adapter, known_types


@pytest.mark.parametrize("spec", list(ADAPTERS.values()), ids=list(ADAPTERS))
def test_each_adapter_declares_options_credentials_and_a_factory(spec):
    assert spec.type in ADAPTERS and spec.title
    assert "environment" in spec.options.model_fields  # [brokers.<name>] environment arrives as an option
    # Every adapter takes an environment with no other option set (Schwab has only "live": no sandbox).
    assert any(spec.option_problems({"environment": env}) == [] for env in ("demo", "live"))
    assert spec.credentials.sets or spec.interactive_login
    params = inspect.signature(spec.factory()).parameters
    assert list(params)[:3] == ["name", "options", "secrets"]
    assert {"instruments", "clock", "data_dir"} <= set(params)
    if not spec.interactive_login:
        assert spec.login_note  # tterm login says how it logs in instead


def test_unknown_types_are_refused_naming_the_ones_that_exist():
    assert known_types() == ["projectx", "schwab", "tastytrade", "tradovate"]
    with pytest.raises(
        UnknownBrokerType,
        match=r"no adapter for broker type 'ib'; "
        r"broker types with an adapter: 'projectx', 'schwab', 'tastytrade', 'tradovate'",
    ):
        adapter("ib")


def test_credentials_pick_the_closest_set_and_accept_options_and_the_username():
    creds = Credentials(sets=(frozenset({"client_secret", "refresh_token"}), frozenset({"password"})), username=True)
    assert creds.missing({}) == ["username", "password"]
    assert creds.missing({"client_secret": "x"}, username="me") == ["refresh_token"]
    assert creds.missing({"username": "me", "password": "p"}) == []
    assert creds.missing({"password": " "}, username="me") == ["password"]  # blank is missing
    cid = Credentials(sets=(frozenset({"cid", "sec"}),), from_options=frozenset({"cid"}))
    assert cid.missing({"sec": "s"}, {"CID": "8123"}) == [] and cid.missing({"sec": "s"}) == ["cid"]
    assert cid.keys == {"cid", "sec"}


def test_reading_the_registry_loads_no_network_code():
    code = "import sys, tterm.config, tterm.brokers.registry; print('websockets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
