"""The palette's "Screenshot": an SVG of the screen, saved where tterm keeps its files.

Textual's own command writes to ``~/Downloads`` and, when that folder is missing, says only
"Failed to save screenshot". tterm saves to ``<data dir>/screenshots/`` (created on first use)
and says where the file went, or which folder could not be written and why. In a browser
(``tterm serve``) the screenshot is a download, as Textual does it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

SCREENSHOT_DIR = "screenshots"


def screenshot_path(directory: Path, now: datetime | None = None) -> Path:
    """A new file name in ``directory``: ``tterm-20261117-093000.svg`` (``-2``, ``-3``... if taken)."""
    stamp = (now or datetime.now().astimezone()).strftime("%Y%m%d-%H%M%S")
    path = directory / f"tterm-{stamp}.svg"
    n = 2
    while path.exists():
        path = directory / f"tterm-{stamp}-{n}.svg"
        n += 1
    return path


def save_svg(svg: str, directory: Path) -> tuple[Path | None, str]:
    """Write ``svg`` to a new file in ``directory``: (path, "") or (None, the reason it failed)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = screenshot_path(directory)
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(svg)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = exc.filename or directory
        log.warning("screenshot not saved in %s: %s", directory, exc)
        return None, f"cannot write {where}: {reason}"
    return path, ""


__all__ = ["SCREENSHOT_DIR", "save_svg", "screenshot_path"]
