"""``[alerts]`` in the config: webhook-outs and commands an alert may name, URLs from secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tterm.config import ConfigError, Settings, validate_settings
from tterm.runtime import alert_actions


def test_webhooks_and_commands_from_config_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[alerts]\nwebhook_slack = "https://hooks.slack.example/T0/B0/token"\n')
    secrets.chmod(0o600)
    monkeypatch.setattr("tterm.config.secrets_path", lambda: secrets)
    monkeypatch.setenv("TTERM_ALERTS_WEBHOOK_PHONE", "https://ntfy.example/from-env")
    settings = Settings.model_validate(
        {
            "alerts": {
                "timeout_seconds": 3,
                "webhooks": {"phone": "https://ntfy.example/from-config"},
                "commands": {"say": ["notify-send", "tterm"]},
            }
        }
    )
    actions = alert_actions(settings)
    assert actions.webhooks == {
        "phone": "https://ntfy.example/from-env",
        "slack": "https://hooks.slack.example/T0/B0/token",
    }
    assert actions.commands == {"say": ["notify-send", "tterm"]}
    assert actions.timeout == 3
    actions.check("slack", "say")
    with pytest.raises(ValueError, match="no command named 'beep'"):
        actions.check("", "beep")


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"webhooks": {"phone": "ftp://x"}}, "alerts.webhooks.phone: must be an http:// or https:// URL"),
        ({"webhooks": {"my phone": "https://x"}}, "may use only"),
        ({"commands": {"say": []}}, "alerts.commands.say"),
        ({"timeout_seconds": 0}, "alerts.timeout_seconds"),
        ({"retries": 3}, "alerts.retries"),
    ],
)
def test_bad_alerts_config(tmp_path: Path, alerts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_settings({"alerts": alerts}, tmp_path / "config.toml")


def test_the_engine_tterm_and_tterm_hub_build_runs_the_configured_actions(tmp_path: Path) -> None:
    from tterm.runtime import build_engine

    settings = Settings.model_validate({"alerts": {"webhooks": {"phone": "https://ntfy.example/x"}}})
    engine = build_engine(settings, root=tmp_path, scripted=True)
    try:
        assert engine.alerts.actions.webhooks == {"phone": "https://ntfy.example/x"}
    finally:
        engine.journal.close()


def test_a_broker_may_not_be_named_alerts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        validate_settings({"brokers": {"alerts": {"type": "tradovate"}}}, tmp_path / "config.toml")
