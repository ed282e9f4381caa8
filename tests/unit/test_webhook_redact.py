"""The journal's text redaction pre-check (added for hub throughput) changes no result: a law."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tterm.core import redact

FRAGMENTS = [
    *("passphrase", "Password", "token", "api_key", "API-KEY", "secret", "Bearer ", "basic ", '"sec"', "'cid'"),
    *("=", ":", '"', " ", "abc123XYZ", "MESZ6", "buy 2 MES mkt", "{", "}", ",", "&", "hook-secret-1"),
]


def slow(text: str) -> str:
    """redact_text without the pre-check: the registered values (whatever other tests in this
    process registered), then the two regexes on everything."""
    if not text:
        return text
    if redact.REDACTOR.active:
        text = redact.REDACTOR.scrub(text)
    text = redact._BEARER.sub(lambda m: f"{m.group(1)} {redact.mask(m.group(2))}", text)
    return redact._PAIR.sub(lambda m: f"{m.group('k')}{m.group('sep')}{m.group('q')}{redact.mask(m.group('v'))}", text)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_precheck_changes_nothing_on_secret_like_text(text: str) -> None:
    assert redact.redact_text(text) == slow(text)


@given(st.text(max_size=80))
def test_precheck_changes_nothing_on_any_text(text: str) -> None:
    assert redact.redact_text(text) == slow(text)


def test_cached_key_checks_still_answer_right() -> None:
    for _ in range(2):
        assert redact.is_secret_key("webhookSecret") and redact.is_secret_key("passphrase")
        assert not redact.is_secret_key("ticker") and not redact.is_secret_key(3)
        assert redact.is_secret_key("app_key") and not redact.is_secret_key("dedup_key")
