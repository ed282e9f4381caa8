"""Themes as data: ``themes/*.toml`` files turned into Textual ``Theme`` objects at start.

A theme file names the Textual base colours and tterm's own tokens (``[variables]``)::

    name = "tterm-amber"
    dark = true
    primary = "#ffb000"
    background = "#0b0904"
    [variables]
    pnl-up = "#8fd14f"
    pnl-down = "#ff6b5b"

Widgets style themselves only through ``$variables`` (see :data:`APP_VARIABLES`), never hex codes.
Shipped themes live in the repository's ``themes/`` directory; a user may drop more files in
``<config dir>/themes/``. A broken file is reported and skipped; it never stops the terminal.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

#: tterm's own theme tokens and their fallbacks (``App.get_theme_variable_defaults``). The
#: fallbacks are Textual variables, so a theme that sets none of them still looks coherent. None
#: is an ``auto`` colour: these colour rendered text directly, where ``auto`` has no background
#: to contrast with.
APP_VARIABLES: dict[str, str] = {
    "pnl-up": "$text-success",
    "pnl-down": "$text-error",
    "tick-up-bg": "$success-muted",
    "tick-down-bg": "$error-muted",
    "bid": "$text-primary",
    "ask": "$text-warning",
    "stale": "$foreground-disabled",
    "badge-paper-bg": "$primary",
    "badge-paper-fg": "$background",
    "badge-live-bg": "$error",
    "badge-live-fg": "$foreground",
    "meter-ok": "$success",
    "meter-warn": "$warning",
    "meter-danger": "$error",
    "meter-track": "$panel",
    "grid-header": "$foreground-muted",
    "grid-cursor-bg": "$panel-lighten-1",
    "grid-cursor-blurred-bg": "$panel",
    "border-blurred": "$secondary",
}

#: Base colour keys a theme file may set (the ``Theme`` constructor's colour arguments).
COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
              "surface", "panel", "boost")  # fmt: skip
OTHER_KEYS = {"name", "dark", "luminosity_spread", "text_alpha", "variables", "description"}


def resolve_references(variables: dict[str, str]) -> dict[str, str]:
    """Replace values that name another variable (``$error``) with that variable's value.

    Textual substitutes a variable's value literally, so a default such as ``pnl-up = $text-success``
    must be resolved against the theme's generated variables before the CSS is parsed.
    """
    out = dict(variables)
    for _ in range(4):
        changed = False
        for key, value in out.items():
            if isinstance(value, str) and value.startswith("$") and value[1:] in out and value[1:] != key:
                out[key] = out[value[1:]]
                changed = True
        if not changed:
            break
    return out


class ThemeVariablesMixin:
    """For any App showing tterm widgets: tterm's variables with their defaults, resolved."""

    # A mixin: super() is the App (or Widget) it is mixed into, which mypy cannot see from here.
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **APP_VARIABLES}  # type: ignore[misc]

    def get_css_variables(self) -> dict[str, str]:
        variables = resolve_references(super().get_css_variables())  # type: ignore[misc]  # mixin, as above
        self.theme_variables = variables
        return variables


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the key."""


def shipped_theme_dir() -> Path | None:
    """The repository's ``themes/`` directory (or the installed copy under ``share/tterm``)."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "themes",
        Path(sys.prefix) / "share" / "tterm" / "themes",
    ):
        if candidate.is_dir():
            return candidate
    return None


def theme_dirs(config_dir: Path | None = None) -> list[Path]:
    """Where themes are read from, shipped first so a user file of the same name wins."""
    dirs = []
    shipped = shipped_theme_dir()
    if shipped is not None:
        dirs.append(shipped)
    if config_dir is not None and (config_dir / "themes").is_dir():
        dirs.append(config_dir / "themes")
    return dirs


def _color(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f'{path}: {key}: must be a colour string such as "#ffb000"')
    if value.startswith("$"):
        return value  # a reference to another theme variable, resolved by Textual
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{path}: {key}: {value!r} is not a colour") from None
    return value


def parse_theme(text: str, path: Path) -> Theme:
    """One theme from the text of its TOML file; ThemeFileError names any bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(data) - set(COLOR_KEYS) - OTHER_KEYS
    if unknown:
        raise ThemeFileError(f"{path}: unknown keys {', '.join(sorted(unknown))} (allowed: {', '.join(COLOR_KEYS)}, "
                             f"{', '.join(sorted(OTHER_KEYS))})")  # fmt: skip
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{path}: name: required, a non-empty string")
    if "primary" not in data:
        raise ThemeFileError(f"{path}: primary: required colour")
    colors = {key: _color(path, key, data[key]) for key in COLOR_KEYS if key in data}
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{path}: dark: must be true or false")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeFileError(f"{path}: variables: must be a table")
    checked: dict[str, str] = {}
    for key, value in variables.items():
        # tterm's own tokens must be colours; other Textual variables pass through as written.
        checked[key] = _color(path, f"variables.{key}", value) if key in APP_VARIABLES else str(value)
    extra: dict[str, float] = {}
    for key in ("luminosity_spread", "text_alpha"):
        if key in data:
            if not isinstance(data[key], int | float):
                raise ThemeFileError(f"{path}: {key}: must be a number")
            extra[key] = float(data[key])
    # colors holds only COLOR_KEYS (str fields of Theme) and extra only its two float fields; mypy
    # cannot match ** of a dict to named parameters of different types.
    return Theme(name=name.strip(), dark=dark, variables=checked, **colors, **extra)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LoadedThemes:
    themes: dict[str, Theme]
    problems: list[str]


def load_themes(dirs: list[Path]) -> LoadedThemes:
    """Every ``*.toml`` theme in ``dirs``; bad files are reported in ``problems`` and skipped."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for d in dirs:
        for path in sorted(d.glob("*.toml")):
            try:
                theme = parse_theme(path.read_text(encoding="utf-8"), path)
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot read: {exc}")
                continue
            except ThemeFileError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return LoadedThemes(themes, problems)
