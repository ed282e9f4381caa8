"""Config: defaults on first run, every kind of error named by file+key+reason, secrets kept apart."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from tterm import config as cfg
from tterm.config import (
    BrokerSettings,
    ConfigError,
    SecretsError,
    Settings,
    config_path,
    data_dir,
    display_path,
    journal_path,
    load_secrets,
    load_settings,
    missing_credentials,
    save_secret,
    save_settings,
    secrets_path,
)
from tterm.core.models import AccountKind

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    conf, data = tmp_path / "conf", tmp_path / "data"
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    monkeypatch.setenv("TTERM_DATA_DIR", str(data))
    for var in list(os.environ):
        if var.startswith("TTERM_") and var not in ("TTERM_CONFIG_DIR", "TTERM_DATA_DIR"):
            monkeypatch.delenv(var)
    return conf, data


def _write(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _error(text: str) -> str:
    path = _write(text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert path.read_text() == text  # a broken file is never rewritten
    return str(info.value)


# --------------------------------------------------------------------------- locations and defaults


def test_defaults_written_on_first_run(dirs: tuple[Path, Path]) -> None:
    conf, data = dirs
    assert not config_path().exists()
    settings = load_settings()
    assert config_path() == conf / "config.toml" and config_path().exists()
    text = config_path().read_text()
    assert text.startswith("# tterm configuration")
    assert 'default_account = "paper:FUT50K"' in text
    assert load_settings() == settings == Settings()

    g = settings.general
    assert (g.theme, g.refresh_hz, g.ssh_profile, g.confirm_orders, g.data_dir) == (
        "tterm-amber",
        30,
        "auto",
        True,
        None,
    )
    p = settings.paper
    assert (p.enabled, p.seed, p.quote_hz, p.replay) == (True, None, 4.0, None)
    assert p.symbols[:2] == ["ES", "MES"] and "GOOGL" in p.symbols and len(p.symbols) == 22
    assert [(a.id, a.name, a.kind, a.balance, a.profile) for a in p.accounts] == [
        ("CASH", "Paper Cash", AccountKind.CASH, Decimal(100000), ""),
        ("FUT50K", "Paper 50K", AccountKind.FUTURES, Decimal(50000), "topstep-50k-combine"),
    ]
    assert settings.watchlists["futures"][0] == "MES1!" and len(settings.watchlists["futures"]) == 12
    assert settings.watchlists["stocks"] == [
        "AAPL",
        "MSFT",
        "NVDA",
        "TSLA",
        "SPY",
        "QQQ",
        "AMD",
        "AMZN",
        "META",
        "GOOGL",
    ]
    assert settings.brokers == {} and settings.accounts == {} and settings.keymap == {} and settings.fees == {}
    assert settings.instruments.equities == []
    assert data_dir(settings) == data
    assert journal_path(settings) == data / "journal.sqlite3"
    assert secrets_path() == conf / "secrets.toml"


def test_no_create_leaves_disk_alone() -> None:
    assert load_settings(create=False) == Settings()
    assert not config_path().exists()


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(f'[general]\ndata_dir = "{tmp_path / "mine"}"\n')
    settings = load_settings(path)
    assert data_dir(settings) == tmp_path / "data"  # the environment wins
    monkeypatch.delenv("TTERM_DATA_DIR")
    assert data_dir(settings) == tmp_path / "mine"
    assert data_dir(None) == Path(cfg.platformdirs.user_data_dir("tterm"))
    _write('[general]\ndata_dir = "rel/dir"\n')
    assert load_settings().general.data_dir == config_path().parent / "rel" / "dir"


def test_round_trip_of_a_full_config(tmp_path: Path) -> None:
    replay = tmp_path / "bars.csv"
    replay.write_text("ts,open,high,low,close\n")
    text = f"""
[general]
refresh_hz = 30
default_account = "tradovate-demo:123"
[paper]
seed = 7
quote_hz = 2.5
replay = "{replay}"
symbols = ["mes", "AAPL", "XYZW"]
[[paper.accounts]]
id = "EVAL-1"
kind = "futures"
balance = 50000.50
[brokers.tradovate-demo]
type = "tradovate"
enabled = true
username = "me"
options = {{ md_url = "wss://example.invalid" }}
[accounts."tradovate-demo:123"]
alias = "eval"
confirm_orders = false
max_order_qty = 5
[accounts."paper:EVAL-1"]
profile = "apex-50k"
[watchlists]
mine = ["MES1!", " nq1! "]
[keymap]
buy = "ctrl+b"
[fees]
mes = 0.5
[instruments]
equities = ["XYZW"]
"""
    settings = load_settings(_write(text))
    assert settings.paper.accounts[0].name == "EVAL-1"  # a nameless account shows its id
    assert settings.paper.accounts[0].balance == Decimal("50000.50")
    assert settings.paper.symbols == ["MES", "AAPL", "XYZW"]
    assert settings.watchlists == {"mine": ["MES1!", "NQ1!"]}
    assert settings.fee_overrides() == {"MES": Decimal("0.5")}
    assert settings.confirm_orders_for("tradovate-demo:123") is False
    assert settings.confirm_orders_for("paper:EVAL-1") is True
    assert list(settings.enabled_brokers()) == ["tradovate-demo"]
    out = tmp_path / "copy.toml"
    save_settings(settings, out)
    assert load_settings(out) == settings
    assert not list(tmp_path.glob(".copy.toml.*"))  # the atomic write left no temp file


def test_example_config_validates() -> None:
    example = REPO / "examples" / "config.toml"
    settings = load_settings(example, create=False)
    assert settings.paper.enabled
    assert example.read_text().count("#") > 20  # it is the commented example


def test_display_path_uses_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / ".config" / "tterm" / "config.toml") == "~/.config/tterm/config.toml"
    assert display_path("/etc/x") == "/etc/x"


# --------------------------------------------------------------------------- config errors


def test_error_message_names_file_key_and_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    text = '[[paper.accounts]]\nid = "A"\nbalance = 1\n[[paper.accounts]]\nid = "B"\nbalance = -5\n'
    msg = _error(text)
    assert msg == "~/conf/config.toml: paper.accounts[1].balance: must be greater than 0 (got -5)"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[general]\nrefresh_rate = 5\n", "general.refresh_rate: unknown key (did you mean 'refresh_hz'?)"),
        ("[genral]\n", "genral: unknown key (did you mean 'general'?)"),
        ("[general]\nrefresh_hz = 61\n", "general.refresh_hz: must be at most 60 (got 61)"),
        ("[general]\nrefresh_hz = 0\n", "general.refresh_hz: must be at least 1 (got 0)"),
        ('[general]\nrefresh_hz = "fast"\n', 'general.refresh_hz: must be a whole number (got "fast")'),
        ("[general]\nrefresh_hz = 2.5\n", "general.refresh_hz: must be a whole number (got 2.5)"),
        (
            '[general]\nssh_profile = "yes"\n',
            "general.ssh_profile: must be one of 'auto', 'on' or 'off' (got \"yes\")",
        ),
        ('[general]\nconfirm_orders = "maybe"\n', "general.confirm_orders: must be true or false"),
        ('[general]\ntheme = " "\n', "general.theme: must not be empty"),
        ('[general]\ndefault_account = "FUT50K"\n', "general.default_account: 'FUT50K' is not an account id"),
        ('[general]\ndefault_account = "paper:NOPE"\n', "general.default_account: no paper account 'NOPE'"),
        ('[general]\ndefault_account = "tv:1"\n', "general.default_account: no broker named 'tv'"),
        ("[paper]\nenabled = false\n", "general.default_account: 'paper:FUT50K' is a paper account but"),
        ("[paper]\nquote_hz = 0\n", "paper.quote_hz: must be greater than 0 (got 0)"),
        ("[paper]\nquote_hz = 51\n", "paper.quote_hz: must be at most 50 (got 51)"),
        ("[paper]\nseed = -1\n", "paper.seed: must be at least 0 (got -1)"),
        ('[paper]\nreplay = "missing.csv"\n', "paper.replay: replay file not found:"),
        ('[paper]\nsymbols = ["MES", "NOPE1"]\n', "paper.symbols[1]: unknown symbol"),
        ('[paper]\nsymbols = "MES"\n', 'paper.symbols: must be a list, e.g. ["A", "B"]'),
        ('[[paper.accounts]]\nid = "cash"\nbalance = 1\n', "paper.accounts[0].id: account id 'cash' may use only"),
        ('[[paper.accounts]]\nid = "A"\n', "paper.accounts[0].balance: required key is missing"),
        (
            '[[paper.accounts]]\nid = "A"\nbalance = "lots"\n',
            'paper.accounts[0].balance: must be a number (got "lots")',
        ),
        (
            '[[paper.accounts]]\nid = "A"\nbalance = 1\nkind = "crypto"\n',
            "paper.accounts[0].kind: must be one of 'cash' or 'futures'",
        ),
        (
            '[general]\ndefault_account = "paper:A"\n[[paper.accounts]]\nid = "A"\nbalance = 1\n'
            '[[paper.accounts]]\nid = "A"\nbalance = 2\n',
            "paper.accounts[1].id: duplicate id 'A' (also paper.accounts[0])",
        ),
        ("[brokers.td]\nenabled = true\n", "brokers.td.type: required key is missing"),
        (
            '[brokers.td]\ntype = "ib"\n',
            "brokers.td.type: no adapter for broker type 'ib'; "
            "broker types with an adapter: 'projectx', 'schwab', 'tastytrade', 'tradovate'",
        ),
        (
            '[brokers.sw]\ntype = "schwab"\n',
            "brokers.sw.environment: Schwab has no demo or sandbox environment: every Schwab order is real",
        ),
        ('[brokers.td]\ntype = "tradovate"\nenvironment = "prod"\n', "brokers.td.environment: must be one of"),
        ('[brokers.TD]\ntype = "tradovate"\n', "brokers.TD: a broker name may use only a-z, 0-9 and '-'"),
        ('[brokers.paper]\ntype = "tradovate"\n', "brokers.paper: the name 'paper' is reserved"),
        (
            '[brokers.tv]\ntype = "tradovate"\noptions = { colour = "red" }\n',
            "brokers.tv.options.colour: unknown option (options of tradovate: ack_wait, app_id, app_version",
        ),
        (
            '[brokers.tv]\ntype = "tradovate"\noptions = { stale_afterr = "3" }\n',
            "brokers.tv.options.stale_afterr: unknown option (did you mean 'stale_after'?)",
        ),
        (
            '[brokers.tv]\ntype = "tradovate"\noptions = { stale_after = "-1" }\n',
            "brokers.tv.options.stale_after: Input should be greater than 0",
        ),
        (
            '[brokers.tv]\ntype = "tradovate"\noptions = { apiKey = "x" }\n',
            "brokers.tv.options.apiKey: looks like a secret: put it in secrets.toml under [tv] or in TTERM_TV_APIKEY",
        ),
        ('[brokers.tv]\ntype = "tradovate"\npassword = "x"\n', "brokers.tv.password: unknown key"),
        ('[accounts."paper:CASH"]\nmax_order_qty = 0\n', 'accounts."paper:CASH".max_order_qty: must be greater than 0'),
        ('[accounts."tv:1"]\nalias = "x"\n', "accounts.\"tv:1\": no broker named 'tv' (configured: paper)"),
        ('[accounts.CASH]\nalias = "x"\n', "accounts.CASH: not an account id"),
        ('[watchlists]\nmine = ["MES1!", ""]\n', "watchlists.mine[1]: a symbol must not be empty"),
        ('[keymap]\nbuy = ""\n', "keymap.buy: must not be empty"),
        ("[fees]\nMES = -0.1\n", "fees.MES: must be at least 0 (got -0.1)"),
        ("[fees]\nMESS = 0.1\n", "fees.MESS: unknown futures root (known: ES, MES"),
        ('[instruments]\nequities = ["TOOLONGX"]\n', "instruments.equities: 'TOOLONGX' is not a valid equity"),
        ("[general\n", "invalid TOML: Expected ']' at the end of a table declaration (at line 1"),
        ('[general]\ntheme = "a"\ntheme = "b"\n', "(at line 3"),
    ],
)
def test_each_kind_of_config_error(toml: str, expected: str) -> None:
    msg = _error(toml)
    path = str(config_path())
    assert msg.startswith(path + ": "), msg
    assert expected in msg, msg


def test_all_problems_reported_at_once() -> None:
    msg = _error("[general]\nrefresh_hz = 0\nssh_profile = 1\n[paper]\nquote_hz = -1\n")
    lines = msg.splitlines()
    assert len(lines) == 3
    assert [line.split(": ")[1] for line in lines] == ["general.refresh_hz", "general.ssh_profile", "paper.quote_hz"]


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(path)


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="no paper account 'X'"):
        Settings.model_validate({"general": {"default_account": "paper:X"}})


# --------------------------------------------------------------------------- secrets


def test_secrets_file_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_secret("tradovate-demo", "password", "file-password-123")
    save_secret("tradovate-demo", "sec", "file-sec-456")
    assert path == secrets_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secrets("tradovate-demo") == {"password": "file-password-123", "sec": "file-sec-456"}
    assert load_secrets("other") == {}

    monkeypatch.setenv("TTERM_TRADOVATE_DEMO_PASSWORD", "env-password-789")
    monkeypatch.setenv("TTERM_TRADOVATE_DEMO_CID", "42")
    assert load_secrets("tradovate-demo") == {"password": "env-password-789", "sec": "file-sec-456", "cid": "42"}


def test_env_of_a_longer_broker_name_is_not_mixed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTERM_TRADOVATE_DEMO_PASSWORD", "x")
    monkeypatch.setenv("TTERM_TRADOVATE_PASSWORD", "y")
    assert load_secrets("tradovate", known_brokers=["tradovate", "tradovate-demo"]) == {"password": "y"}


def test_secrets_readable_by_others_refused() -> None:
    path = save_secret("schwab", "app_secret", "s3cr3t-value-xyz")
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError) as info:
        load_secrets("schwab")
    msg = str(info.value)
    assert f"chmod 600 {path}" in msg and "0644" in msg
    assert "s3cr3t" not in msg
    os.chmod(path, 0o600)
    assert load_secrets("schwab") == {"app_secret": "s3cr3t-value-xyz"}


def test_secret_values_never_in_reprs_or_errors() -> None:
    save_secret("px", "api_key", "super-secret-api-key")
    secrets = load_secrets("px")
    assert secrets["api_key"] == "super-secret-api-key"
    assert "super-secret" not in repr(secrets) and "super-secret" not in str(secrets)
    assert "****ey" in repr(secrets)

    # A malformed secrets file: the error names the line, never the text around it.
    path = secrets_path()
    path.write_text('[px]\napi_key = "super-secret-api-key\n')
    with pytest.raises(SecretsError) as info:
        load_secrets("px")
    assert "line 2" in str(info.value) and "super-secret" not in str(info.value)
    path.write_text('[px]\napi_key = ["super-secret-api-key"]\n')
    with pytest.raises(SecretsError) as info:
        load_secrets("px")
    assert "px.api_key: must be a string" in str(info.value) and "super-secret" not in str(info.value)


def test_save_secret_validates_names() -> None:
    with pytest.raises(ValueError, match="broker name"):
        save_secret("Bad Name", "password", "x")
    with pytest.raises(ValueError, match="secret key"):
        save_secret("ok", "Pass Word", "x")
    assert not secrets_path().exists()


def test_missing_credentials() -> None:
    tv = BrokerSettings(type="tradovate", enabled=True, username="me")
    missing = missing_credentials("tv", tv, {"password": "p"})
    assert [what for what, _ in missing] == ["secret 'cid'", "secret 'sec'"]
    assert "TTERM_TV_CID" in missing[0][1] and "or cid = " in missing[0][1]
    assert missing_credentials("tv", tv, {"password": "p", "cid": "1", "sec": "s"}) == []
    nouser = BrokerSettings(type="tradovate", enabled=True)
    assert [w for w, _ in missing_credentials("tv", nouser, {"password": "p", "cid": "1", "sec": "s"})] == [
        "brokers.tv.username is empty"
    ]
    # The login name may come with the secrets too (the runtime merges it the same way).
    assert missing_credentials("tv", nouser, {"username": "me", "password": "p", "cid": "1", "sec": "s"}) == []


def test_cid_under_options_satisfies_the_credentials_the_adapter_declares() -> None:
    """One declaration: with cid as an option, neither the config nor the adapter asks for a secret cid."""
    from tterm.brokers.tradovate import TradovateCredentials, TradovateSettings

    path = _write('[brokers.tv]\ntype = "tradovate"\nenabled = true\nusername = "me"\noptions = { cid = "8123" }\n')
    tv = load_settings(path).brokers["tv"]  # an option the adapter declares is not a misplaced secret
    assert missing_credentials("tv", tv, {"password": "p", "sec": "s"}) == []
    settings = TradovateSettings.from_options(tv.adapter_options(), broker="tv")
    creds = TradovateCredentials.from_secrets(
        {"username": "me", "password": "p", "sec": "s"}, broker="tv", settings=settings
    )
    assert creds.cid == 8123
    assert [w for w, _ in missing_credentials("tv", tv, {"password": "p"})] == ["secret 'sec'"]


def test_extra_equities_reach_the_instrument_master() -> None:
    """[instruments] equities feed InstrumentMaster(equities=...) as the runtime builds it."""
    from tterm.core.instruments import InstrumentMaster

    settings = load_settings(_write('[instruments]\nequities = ["pltr"]\n[paper]\nsymbols = ["PLTR", "MES"]\n'))
    master = InstrumentMaster(fee_overrides=settings.fee_overrides(), equities=settings.instruments.equities)
    assert master.resolve("PLTR").symbol == "PLTR"
