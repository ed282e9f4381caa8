"""parse_options / require_secrets: typed options, plain-words errors that never echo values."""

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from tterm.brokers.common.settings import BrokerConfigError, parse_options, require_secrets


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: Literal["demo", "live"] = "demo"
    heartbeat_interval: float = 2.5


def test_strings_are_converted_and_keys_normalised():
    opts = parse_options(Opts, {"Environment": "live", "heartbeat-interval": "1.5"}, broker="tv")
    assert opts.environment == "live" and opts.heartbeat_interval == 1.5


def test_unknown_and_bad_options_are_named():
    with pytest.raises(BrokerConfigError, match=r"unknown option 'colour'.*known options: environment"):
        parse_options(Opts, {"colour": "red"}, broker="tv")
    with pytest.raises(BrokerConfigError, match=r"broker 'tv': option 'environment'"):
        parse_options(Opts, {"environment": "paper"}, broker="tv")


def test_missing_secrets_name_the_keys_and_env_vars_but_no_values():
    with pytest.raises(BrokerConfigError) as err:
        require_secrets({"username": "bob", "password": "pw-123456"}, ("username", "password", "sec"), broker="tv-demo")
    msg = str(err.value)
    assert "sec" in msg and "TTERM_TV_DEMO_SEC" in msg
    assert "pw-123456" not in msg and "bob" not in msg


def test_present_secrets_are_returned_lower_cased():
    got = require_secrets({"USERNAME": "bob", "Password": "x", "empty": ""}, ("username", "password"), broker="b")
    assert got == {"username": "bob", "password": "x"}
