"""The [hub] config section: both strategy forms, account checks, round trip through TOML."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from tterm.config import ConfigError, settings_to_toml, validate_settings


def test_table_and_list_forms_give_the_same_strategies() -> None:
    table = validate_settings(
        {"hub": {"strategies": {"trend": {"accounts": ["paper:FUT50K", {"account": "paper:CASH", "multiplier": 2}]}}}},
        "c.toml",
    )
    listed = validate_settings(
        {
            "hub": {
                "strategies": [
                    {"id": "trend", "accounts": ["paper:FUT50K", {"account": "paper:CASH", "multiplier": 2}]}
                ]
            }
        },
        "c.toml",
    )
    assert table.hub == listed.hub
    accts = table.hub.strategies["trend"].accounts
    assert [(a.account, a.multiplier) for a in accts] == [("paper:FUT50K", Decimal(1)), ("paper:CASH", Decimal(2))]


def test_defaults_are_safe() -> None:
    hub = validate_settings({}, "c.toml").hub
    assert hub.host == "127.0.0.1"
    assert not hub.serve_webhooks and not hub.trust_proxy
    assert hub.strategies == {}


@pytest.mark.parametrize(
    ("hub", "message"),
    [
        ({"strategies": {"t": {"accounts": ["paper:NOPE"]}}}, "hub.strategies.t.accounts[0]: no paper account 'NOPE'"),
        ({"strategies": {"t": {"accounts": ["tradovate:1"]}}}, "no broker named 'tradovate'"),
        ({"strategies": {"t": {"accounts": []}}}, "hub.strategies.t.accounts"),
        ({"strategies": {"t": {"accounts": [{"account": "paper:CASH", "multiplier": 0}]}}}, "must be greater than 0"),
        ({"strategies": {"a/b": {"accounts": ["paper:CASH"]}}}, "may use only"),
        ({"strategies": [{"accounts": ["paper:CASH"]}]}, "needs an id"),
        ({"allowed_ips": ["10.0.0.300"]}, "not an IP address"),
        ({"port": 70000}, "hub.port"),
        ({"secret": "x"}, "hub.secret: unknown key"),
    ],
)
def test_bad_hub_config_names_the_key(hub: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"hub": hub}, "c.toml")
    assert message in str(info.value)


def test_toml_round_trip() -> None:
    s = validate_settings(
        {"hub": {"port": 9000, "allowed_ips": ["203.0.113.0/24"], "strategies": {"t": {"accounts": ["paper:CASH"],
         "symbols": {"nq1!": "MNQ1!"}, "quantity": 2}}}},
        "c.toml",
    )  # fmt: skip
    again = validate_settings(tomllib.loads(settings_to_toml(s)), "c.toml")
    assert again.hub == s.hub
    assert again.hub.strategies["t"].symbols == {"NQ1!": "MNQ1!"}
