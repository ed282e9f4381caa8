"""Rule profiles: the shipped set, user overrides, ``extends``, and strict validation errors."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from tterm.core.instruments import InstrumentMaster
from tterm.risk.profiles import (
    DllAction,
    DrawdownModel,
    LockRule,
    ProfileError,
    UnknownProfile,
    load_profiles,
    parse_profile_text,
)

SHIPPED = load_profiles(user=False)

MINIMAL = """
[[profile]]
id = "my-firm-50k"
firm = "My Firm"
program = "Eval"
phase = "evaluation"
account_size = 50000
source_date = "2026-07-01"
drawdown = { amount = 2000, model = "eod" }
"""


def test_every_firm_and_variant_the_issue_lists_is_shipped() -> None:
    ids = set(SHIPPED.ids())
    for size in ("50k", "100k", "150k"):
        for kind in ("combine", "combine-topstepx", "xfa", "xfa-topstepx"):
            assert f"topstep-{size}-{kind}" in ids
        assert f"tradeday-{size}-intraday" in ids
        assert f"tradeday-{size}-eod" in ids
        assert f"tradeday-{size}-static" in ids
        assert f"mffu-{size}-eval" in ids
    for size in ("25k", "50k", "100k", "150k"):
        assert f"apex-legacy-{size}-eval" in ids and f"apex-legacy-{size}-pa" in ids
        assert f"apex-2026-{size}-eod-eval" in ids and f"apex-2026-{size}-intraday-eval" in ids
    for size in ("25k", "50k", "75k", "100k", "150k"):
        assert f"tpt-{size}-test" in ids and f"tpt-{size}-pro" in ids
    assert "mffu-50k-funded" in ids


def test_every_shipped_profile_carries_its_identity_and_source_date() -> None:
    for pid in SHIPPED.ids():
        p = SHIPPED.get(pid)
        assert p.firm and p.program and p.phase and p.account_size > 0
        assert p.source_date[:4] in ("2024", "2025", "2026"), pid
        assert p.sources, f"{pid} names no source"


def test_topstep_50k_combine_matches_the_reference() -> None:
    p = SHIPPED.get("topstep-50k-combine")
    assert p.start == Decimal(50000) and p.profit_target == Decimal(3000)
    assert p.drawdown.amount == Decimal(2000)
    assert p.drawdown.model is DrawdownModel.EOD and p.drawdown.lock is LockRule.START
    assert p.daily_loss.amount == Decimal(1000) and p.daily_loss.action is DllAction.FLATTEN_BLOCK
    assert p.contracts.max == 5 and p.contracts.micro_ratio == 1
    assert p.session.flat_by == time(15, 10)
    assert p.session.auto_flatten == time(15, 8) and p.session.cutoff == time(15, 8)
    assert p.consistency is not None and p.consistency.percent == Decimal(50)
    assert any("consistency.base" in u for u in p.uncertain)


def test_topstepx_has_no_dll_and_counts_micros_ten_to_one() -> None:
    p = SHIPPED.get("topstep-50k-combine-topstepx")
    assert not p.has_dll
    master = InstrumentMaster()
    assert p.contracts.weight(master.resolve("MES")) == Decimal("0.1")
    assert p.contracts.weight(master.resolve("ES")) == Decimal(1)
    other = SHIPPED.get("topstep-50k-combine")
    assert other.contracts.weight(master.resolve("MES")) == Decimal(1)


def test_xfa_starts_at_zero_and_scales() -> None:
    p = SHIPPED.get("topstep-50k-xfa")
    assert p.start == 0 and p.account_size == Decimal(50000)
    assert [(s.from_profit, s.max) for s in p.contracts.scaling] == [(0, 2), (1500, 3), (2000, 5)]


def test_uncertain_numbers_are_marked_with_a_source() -> None:
    for pid in ("topstep-100k-xfa", "apex-legacy-150k-eval", "tradeday-50k-intraday", "tpt-50k-test"):
        assert SHIPPED.get(pid).uncertain, pid
    assert any("h2tfunding" in u or "memory" in u for u in SHIPPED.get("topstep-150k-xfa").uncertain)
    assert SHIPPED.get("apex-2026-50k-eod-eval").unknown


def test_unknown_profile_suggests_close_ids() -> None:
    with pytest.raises(UnknownProfile, match="did you mean topstep-50k-combine"):
        SHIPPED.get("topstep-50k-combin")


def test_user_profile_overrides_a_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        """
[[profile]]
id = "topstep-50k-combine"
extends = "topstep-50k-combine"
daily_loss = { amount = 800, action = "flatten_block" }
"""
    )
    ps = load_profiles(user=tmp_path)
    p = ps.get("topstep-50k-combine")
    assert p.daily_loss.amount == Decimal(800)
    assert p.drawdown.amount == Decimal(2000)  # the rest comes from the shipped profile
    assert ps.origin("topstep-50k-combine").endswith("mine.toml")


def test_user_profile_extends_and_aliases_from_the_reference(tmp_path: Path) -> None:
    (tmp_path / "firm.toml").write_text(
        """
[defaults]
firm = "Lucid"
source_date = 2026-07-01

[[profile]]
id = "lucid-50k"
program = "Flex"
phase = "funded"
account_size = 50000
drawdown = { amount = 2000, model = "eod", lock = "start+100" }
daily_loss = { amount = 1000, action = "soft_flatten_block" }
session = { flat_by = 15:45:00 }

[[profile]]
id = "lucid-50k-hard"
extends = "lucid-50k"
daily_loss = { action = "hard_fail" }
"""
    )
    ps = load_profiles(user=tmp_path)
    p = ps.get("lucid-50k")
    assert p.drawdown.lock is LockRule.START_PLUS_100
    assert p.daily_loss.action is DllAction.FLATTEN_BLOCK
    assert p.session.flat_by == time(15, 45)
    assert p.source_date == "2026-07-01"
    hard = ps.get("lucid-50k-hard")
    assert hard.daily_loss.action is DllAction.FAIL and hard.daily_loss.amount == Decimal(1000)


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        ('drawdown = { amount = 2000, model = "eod-ish" }', "drawdown.model", "Input should be"),
        ('drawdown = { amount = -5, model = "eod" }', "drawdown.amount", "greater than 0"),
        (
            'drawdown = { amount = 2000, model = "eod", lock = "until_target" }',
            "profile[0] (my-firm-50k)",
            "needs a profit_target",
        ),
        ('daily_loss = { action = "flatten_block" }', "daily_loss", "needs an amount"),
        ('contracts = { micro_ratio = "5:1" }', "contracts.micro_ratio", 'or "10:1", got'),
        (
            "contracts = { max = 3, scaling = [{ from_profit = 0, max = 2 }, { from_profit = 0, max = 3 }] }",
            "contracts",
            "must rise",
        ),
        ("contracts = { max = 2, scaling = [{ from_profit = 0, max = 3 }] }", "contracts", "more than max"),
        ('session = { flat_by = "25:10" }', "session.flat_by", "not a CT time"),
        ("colour = 3", "colour", "unknown key"),
        ('source_date = "last year"', "source_date", "YYYY-MM-DD"),
    ],
)
def test_bad_profiles_name_file_key_and_reason(tmp_path: Path, edit: str, key: str, reason: str) -> None:
    lines = MINIMAL.strip().splitlines()
    field = edit.split(" = ")[0]
    lines = [ln for ln in lines if not ln.startswith(f"{field} =")] + [edit]
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProfileError) as info:
        load_profiles(user=tmp_path)
    text = str(info.value)
    assert str(path) in text and key in text and reason in text, text


def test_missing_keys_and_bad_toml_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[[profile]]\nid = "x-1"\nfirm = "X"\n')
    (tmp_path / "b.toml").write_text("[[profile]\n")
    (tmp_path / "c.toml").write_text(MINIMAL + MINIMAL)
    with pytest.raises(ProfileError) as info:
        load_profiles(user=tmp_path)
    text = str(info.value)
    assert "a.toml: profile[0] (x-1).drawdown: missing" in text
    assert "b.toml: not valid TOML" in text
    assert "duplicate id 'my-firm-50k' (also in this file)" in text


def test_extends_errors(tmp_path: Path) -> None:
    body = MINIMAL.replace('id = "my-firm-50k"', 'id = "a"\nextends = "b"')
    body += MINIMAL.replace('id = "my-firm-50k"', 'id = "b"\nextends = "a"')
    body += MINIMAL.replace('id = "my-firm-50k"', 'id = "c"\nextends = "topstep-50k-combin"')
    (tmp_path / "x.toml").write_text(body)
    with pytest.raises(ProfileError) as info:
        load_profiles(user=tmp_path)
    text = str(info.value)
    assert "extends loops: a -> b -> a" in text
    assert "no profile 'topstep-50k-combin' to extend; did you mean topstep-50k-combine" in text


def test_parse_profile_text_and_non_strict_loading(tmp_path: Path) -> None:
    (p,) = parse_profile_text(MINIMAL)
    assert p.id == "my-firm-50k" and p.start == Decimal(50000) and p.drawdown.lock is LockRule.START
    (tmp_path / "bad.toml").write_text("[[profile]]\nid = 'zz'\n")
    ps = load_profiles(user=tmp_path, strict=False)
    assert "zz" not in ps and "topstep-50k-combine" in ps


def test_the_example_user_profiles_load_and_override() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "risk"
    ps = load_profiles(user=examples)
    assert ps.get("topstep-50k-combine").daily_loss.amount == Decimal(800)
    assert ps.get("apex-legacy-150k-pa").drawdown.amount == Decimal(5000)
    assert ps.get("apex-legacy-150k-pa").contracts.max == 17  # kept from the shipped profile
    assert ps.get("lucid-50k-flex").session.flat_by == time(15, 45)
    assert len(ps) == len(SHIPPED) + 1
