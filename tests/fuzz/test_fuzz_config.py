"""The config loader (tterm/config.py) fuzzed: the shipped example and the defaults, mutated (keys
dropped, values replaced with every TOML type, huge numbers, inf/nan, dates, unknown keys and
enum words, nesting where a value belongs), and raw TOML text. Every document gives Settings or a
ConfigError naming the file, a key and a reason per problem; never another exception. A document
that validates survives save -> load unchanged."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import FUZZ
from tterm.config import ConfigError, Settings, load_settings, settings_to_toml, validate_settings

EXAMPLE = tomllib.loads((Path(__file__).resolve().parents[2] / "examples" / "config.toml").read_text())
DEFAULTS = tomllib.loads(settings_to_toml(Settings()))
WHERE = Path("/fuzz/config.toml")

JUNK = st.one_of(
    st.none(),  # not TOML, but a caller may hand validate_settings a dict from elsewhere
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([10**30, -(10**30), 0, -1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["auto", "on", "off", "futures", "cash", "margin", "demo", "live", "paper:FUT50K", "x:1", ""]),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.times(),
    st.lists(st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from([EXAMPLE, DEFAULTS, {}])))
    for _ in range(draw(st.integers(1, 6))):
        paths = _paths(doc)
        if not paths:
            doc[draw(st.text(max_size=8))] = draw(JUNK)
            continue
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        what = draw(st.sampled_from(["replace", "delete", "unknown", "nest"]))
        if what == "replace":
            parent[path[-1]] = draw(JUNK)
        elif what == "delete":
            del parent[path[-1]]
        elif what == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
        elif what == "nest":
            parent[path[-1]] = {"value": parent[path[-1]]}
    return doc


def _check(doc: dict[str, Any]) -> None:
    try:
        settings = validate_settings(doc, WHERE, base_dir=Path("/nonexistent-fuzz-dir"))
    except ConfigError as exc:
        assert exc.problems and all(isinstance(k, str) and isinstance(r, str) and r for k, r in exc.problems)
        assert str(exc).startswith(str(WHERE))
        return
    assert isinstance(settings, Settings)
    again = validate_settings(tomllib.loads(settings_to_toml(settings)), WHERE, base_dir=Path("/nonexistent-fuzz-dir"))
    assert again == settings


@FUZZ
@given(documents())
def test_any_mutated_config_is_settings_or_a_config_error(doc: dict[str, Any]) -> None:
    _check(doc)


@FUZZ
@given(st.text(max_size=200))
def test_any_toml_text_is_settings_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_settings(path, create=False)
    except ConfigError as exc:
        assert exc.problems
