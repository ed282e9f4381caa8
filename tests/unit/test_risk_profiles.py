"""Rule profiles: the shipped set, user overrides, ``extends``, and strict validation errors."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from tterm.core.instruments import InstrumentMaster
from tterm.risk.caveats import caveats, depends_on
from tterm.risk.commands import describe_profile
from tterm.risk.profiles import (
    CutoffAction,
    DllAction,
    DrawdownModel,
    Hedging,
    LockRule,
    NewsAction,
    ProfileError,
    ProfileIncomplete,
    UnknownProfile,
    load_profiles,
    parse_profile_text,
)
from tterm.risk.rules import lock_level

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
        assert f"apex-2026-{size}-eod-pa" in ids and f"apex-2026-{size}-intraday-pa" in ids
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
    assert any(u.key == "consistency.base" for u in p.uncertain)


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
    assert any("h2tfunding" in u.text or "memory" in u.text for u in SHIPPED.get("topstep-150k-xfa").uncertain)
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


# --------------------------------------------------------------------------- round two: caveats, facts, news, hedging


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        ('news = { rule = "flatten" }', "news", "needs before_minutes or after_minutes"),
        ("news = { before_minutes = 5 }", "news", "rule is 'none'"),
        ('news = { rule = "no_entries", before_minutes = 500 }', "news.before_minutes", "less than or equal to 240"),
        ('news = { rule = "no_entries", before_minutes = -1 }', "news.before_minutes", "greater than or equal to 0"),
        ('news = { rule = "blackout", before_minutes = 5 }', "news.rule", "Input should be"),
        ('news = { rule = "warn", after_minutes = 5, events = ["cpi", "n f p"] }', "news.events", "not a release kind"),
        ('hedging = "sometimes"', "hedging", "Input should be 'forbidden' or 'allowed'"),
        ('session = { flat_by_action = "fail" }', "session", "needs a flat_by time"),
        ('uncertain = [{ key = "drawdown.amout", text = "x" }]', "uncertain[0].key", "did you mean drawdown.amount"),
        ('unknown = [{ key = "daily_loss" }]', "unknown[0].text", "missing"),
        ('facts = { "drawdown.amout" = "x" }', "profile[0] (my-firm-50k)", "did you mean drawdown.amount"),
        ('facts = { "profit_target" = "my dashboard" }', "profile[0] (my-firm-50k)", "has a source but no value"),
        ('drawdown = { model = "eod" }', "profile[0] (my-firm-50k)", "list it under unknown"),
        ('drawdown = { amount = 50000, model = "eod" }', "profile[0] (my-firm-50k)", "not below the account size"),
    ],
)
def test_round_two_keys_are_validated_with_file_key_and_reason(
    tmp_path: Path, edit: str, key: str, reason: str
) -> None:
    test_bad_profiles_name_file_key_and_reason(tmp_path, edit, key, reason)


def test_caveats_name_their_key_in_tables_or_text() -> None:
    (p,) = parse_profile_text(
        MINIMAL
        + 'uncertain = ["drawdown.model: my guess", "something general",'
        + ' { key = "contracts.max", text = "from memory" }]\n'
        + 'unknown = [{ key = "daily_loss.amount", text = "no number" }]\n'
    )
    assert [(c.key, c.text) for c in p.uncertain] == [
        ("drawdown.model", "drawdown.model: my guess"),
        ("", "something general"),
        ("contracts.max", "from memory"),
    ]
    assert p.unknown[0].section == "daily_loss"
    texts = [d.text for d in caveats(p)]
    assert texts[0] == "this evaluation has a DLL whose amount is unknown: not checked (no number)"
    assert "drawdown.model: uncertain: my guess" in texts and "uncertain: something general" in texts
    # a verdict that never lost money and never held a contract leans on the floor only
    assert [d.caveat.key for d in depends_on(p, {"drawdown"})] == ["drawdown.model", ""]


def test_every_shipped_caveat_names_a_key_and_every_number_has_a_source() -> None:
    for pid in SHIPPED.ids():
        p = SHIPPED.get(pid)
        for c in [*p.uncertain, *p.unknown]:
            assert c.key, f"{pid}: {c.text}"
        assert "drawdown.model" in p.facts and "account_size" in p.facts, pid
        if p.drawdown.amount is not None:
            assert "drawdown.amount" in p.facts, pid
        if p.daily_loss.amount is not None:
            assert "daily_loss.amount" in p.facts, pid


def test_profile_data_fixes_from_the_reference() -> None:
    # Apex legacy 150K evaluation: one source's pair (TradersPost $8,000 / $3,000), not a mix,
    # so the until_target lock sits at start + target - threshold = $155,000.
    ev = SHIPPED.get("apex-legacy-150k-eval")
    assert (ev.profit_target, ev.drawdown.amount) == (Decimal(8000), Decimal(3000))
    assert lock_level(ev) == Decimal(155000)
    assert {c.key for c in ev.uncertain} >= {"drawdown.amount", "profit_target"}
    # Apex legacy 150K PA: full size where the $3,000 threshold stops trailing (+$100).
    pa = SHIPPED.get("apex-legacy-150k-pa")
    assert [(s.from_profit, s.max) for s in pa.contracts.scaling] == [(0, 8), (3100, 17)]
    assert pa.hedging is Hedging.FORBIDDEN
    # TPT: the DLLs were reported removed in January 2025 (profiles dated 2026): no firm DLL,
    # the listed amounts kept as an uncertain note; a position past 16:00 CT fails the account.
    for pid in ("tpt-50k-test", "tpt-150k-pro"):
        tpt = SHIPPED.get(pid)
        assert not tpt.has_dll and any(c.section == "daily_loss" for c in tpt.uncertain)
        assert tpt.session.flat_by_action is CutoffAction.FAIL
    assert SHIPPED.get("tpt-50k-pro").news.rule is NewsAction.FLATTEN
    # MFFU funded: the reference gives no drawdown amount, so the profile says so and cannot be enforced.
    mffu = SHIPPED.get("mffu-50k-funded")
    assert mffu.drawdown.amount is None and not mffu.enforceable
    assert any(c.key == "drawdown.amount" for c in mffu.unknown)
    with pytest.raises(ProfileIncomplete, match=r"drawdown\.amount = your number"):
        mffu.require_enforceable()


def test_apex_2026_performance_accounts_say_where_the_reference_is_silent() -> None:
    for size in ("25k", "50k", "100k", "150k"):
        for trail in ("eod", "intraday"):
            p = SHIPPED.get(f"apex-2026-{size}-{trail}-pa")
            assert p.phase == "funded" and p.source_date == "2026-03-01"
            assert p.consistency is not None and p.consistency.percent == 50 and p.consistency.scope.value == "payout"
            unknown = {c.key for c in p.unknown}
            assert {"contracts.max", "hedging"} <= unknown
            assert ("daily_loss.amount" in unknown) == (trail == "eod")
            assert p.contracts.max is None and p.hedging is None and not p.has_dll
            assert {c.key for c in p.uncertain} >= {"drawdown.amount", "drawdown.lock"}
    assert SHIPPED.get("apex-2026-50k-intraday-pa").drawdown.model is DrawdownModel.INTRADAY_EQUITY


def test_tterm_profiles_id_names_every_caveat_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    text = describe_profile(SHIPPED.get("apex-2026-50k-eod-eval"))
    assert "this evaluation has a DLL whose amount is unknown: not checked" in text
    assert "drawdown.amount        blog.traderspost.io (2026-02, pre-change) [3P, UNCERTAIN]" in text
    text = describe_profile(SHIPPED.get("mffu-50k-funded"))
    assert "drawdown UNKNOWN" in text and "NOT ENFORCEABLE" in text
    assert "the drawdown amount is unknown: the floor cannot be checked" in text
    text = describe_profile(SHIPPED.get("tpt-50k-pro"))
    assert "a position still open then FAILS the account" in text
    assert "news: flatten from 1 min before to 1 min after CPI, NFP, FOMC" in text
