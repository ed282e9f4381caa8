"""Rule files edited while tterm runs: reload what changed, keep the last good set on a bad edit.

The risk monitor polls a :class:`RuleFiles` from its once-a-second timer. A poll costs a ``stat``
of each file; only when a signature (path, modification time, size) changes are the files read
and validated again. A file with a problem (an unknown key, a bad time, an impossible number)
is reported with the file, the key and the reason, and the set in force does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar

from tterm.risk import news, profiles

T = TypeVar("T")
Signature = tuple[tuple[str, int, int], ...]


def signature(paths: Iterable[Path]) -> Signature:
    """What a change to any of ``paths`` changes (a missing file counts as (path, -1, -1))."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


@dataclass(slots=True)
class Outcome(Generic[T]):
    """The result of one reload: the new value, or why the files were refused."""

    status: Literal["reloaded", "rejected"]
    value: T | None = None
    error: str = ""


class Watched(Generic[T]):
    """One rule set read from files (see the module docstring)."""

    def __init__(self, name: str, paths: Callable[[], list[Path]], load: Callable[[], T]) -> None:
        self.name = name
        self._paths = paths
        self._load = load
        self._sig: Signature | None = None

    def mark(self) -> None:
        """Take the files as they are now as the ones in force (call after the first load)."""
        self._sig = signature(self._paths())

    def poll(self) -> Outcome[T] | None:
        """None when nothing changed; else the reloaded value or the reason it was refused."""
        sig = signature(self._paths())
        if sig == self._sig:
            return None
        self._sig = sig
        try:
            return Outcome("reloaded", self._load())
        except (profiles.ProfileError, news.CalendarError) as exc:
            return Outcome("rejected", error=str(exc))


def _toml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else [folder]


@dataclass(slots=True)
class RuleFiles:
    """The profile folders and the news calendar of one running tterm."""

    profiles: Watched[profiles.ProfileSet]
    calendar: Watched[news.NewsCalendar]

    @classmethod
    def default(cls) -> RuleFiles:
        """The shipped files and the user's (``<config dir>/profiles/*.toml``, ``news.toml``)."""
        return cls.at(profiles.user_dir(), news.user_path())

    @classmethod
    def at(cls, profile_dir: Path, calendar_path: Path) -> RuleFiles:
        shipped = profiles.shipped_dir()
        return cls(
            profiles=Watched(
                "rule profiles",
                lambda: [*_toml_files(shipped), *_toml_files(profile_dir)],
                lambda: profiles.load_profiles(profile_dir),
            ),
            calendar=Watched(
                "news calendar",
                lambda: [news.shipped_path(), calendar_path],
                lambda: news.load_calendar(calendar_path),
            ),
        )

    def mark(self) -> None:
        self.profiles.mark()
        self.calendar.mark()
