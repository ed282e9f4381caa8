"""Strategies that damage vendor JSON the way a vendor (or a proxy) might: a field dropped, set to
null, to a huge or non-finite number, to a number written as text, to an unknown enum word, to the
wrong type (a list or object where a scalar belongs, and the reverse)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, -1, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e999999", "-1e999999", "1E+999999999", "NaN", "Infinity", "-0", "١٢", "12abc", ""]),
    st.sampled_from(["UNKNOWN_ENUM", "FILLED", "WORKING", "BUY", "SELL", "LIMIT", "Filled", "Buy", "Working"]),
    st.text(max_size=8),
    st.lists(st.integers(-2, 2), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
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
def damaged(draw: st.DrawFn, bases: list[Any], most: int = 5) -> Any:
    """One of ``bases``, deep-copied, with 1..``most`` fields damaged."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, most))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JUNK)
    return doc
