"""What a verdict cannot vouch for: the ``unknown`` and ``uncertain`` items of a rule profile.

A replay verdict ("passed", "breached at 11:30") is only as good as the numbers behind it. Each
caveat names the profile key it is about; :func:`depends_on` keeps the ones a given verdict
actually leans on (a DLL caveat matters on a day that lost money, a flat-by caveat on a day that
held a position late), and :func:`sentence` says each in plain words ("this evaluation has a DLL
whose amount is unknown: not checked").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tterm.risk.profiles import Caveat, LockRule, Profile

Kind = Literal["unknown", "uncertain"]

#: Every area a verdict can rest on; ``general`` is a caveat about the profile as a whole.
AREAS = ("general", "drawdown", "daily_loss", "contracts", "session", "news", "hedging", "target", "consistency")


@dataclass(frozen=True, slots=True)
class Dependency:
    """One caveat a verdict depends on."""

    kind: Kind
    caveat: Caveat
    text: str


def area(profile: Profile, key: str) -> str:
    """The rule area a profile key belongs to."""
    if not key:
        return "general"
    if key in ("account_size", "start_balance"):
        return "drawdown"
    if key == "profit_target":
        return "drawdown" if profile.drawdown.lock is LockRule.UNTIL_TARGET else "target"
    if key == "min_days":
        return "target"
    return key.split(".")[0]


def sentence(profile: Profile, kind: Kind, caveat: Caveat) -> str:
    """The caveat as a trader reads it: what tterm cannot check, and why."""
    why = caveat.text
    if caveat.key and why.startswith(caveat.key):
        why = why[len(caveat.key) :].lstrip(" :") or why
    if kind == "uncertain":
        return f"{caveat.key}: uncertain: {why}" if caveat.key else f"uncertain: {why}"
    key = caveat.key
    section = caveat.section
    noun = "evaluation" if profile.phase == "evaluation" else "account"
    if section == "daily_loss":
        head = f"this {noun} has a DLL whose amount is unknown: not checked"
    elif key in ("drawdown", "drawdown.amount"):
        head = "the drawdown amount is unknown: the floor cannot be checked"
    elif section == "drawdown":
        head = f"{key} is unknown: the floor may move differently"
    elif key in ("session", "session.flat_by"):
        head = "the flat-by time is unknown: positions held late are not checked"
    elif section == "session":
        head = f"{key} is unknown: the cutoff is not checked"
    elif section == "contracts":
        head = "the contract limit is unknown: size is not checked"
    elif key == "profit_target":
        head = "the profit target is unknown: progress is not shown"
    elif section == "news":
        head = "the news rule is unknown: release windows are not checked"
    elif section == "hedging":
        head = "whether hedging across accounts is allowed is unknown: not checked"
    elif key:
        head = f"{key} is unknown: not checked"
    else:
        head = "a rule is unknown: not checked"
    return f"{head} ({why})"


def caveats(profile: Profile) -> list[Dependency]:
    """Every caveat of the profile, unknown ones first."""
    out = [Dependency("unknown", c, sentence(profile, "unknown", c)) for c in profile.unknown]
    out += [Dependency("uncertain", c, sentence(profile, "uncertain", c)) for c in profile.uncertain]
    return out


def depends_on(profile: Profile, areas: Iterable[str]) -> list[Dependency]:
    """The caveats a verdict resting on ``areas`` depends on (``general`` ones always count)."""
    wanted = {"general", *areas}
    return [d for d in caveats(profile) if area(profile, d.caveat.key) in wanted]
