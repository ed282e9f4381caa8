"""Where tterm's log lines go, with every registered secret scrubbed on the way.

Every entry point calls :func:`setup_logging` once. Records go to a rotating file in the data
dir (``tterm.log``), and for headless commands (``tterm hub``) also to stderr, where systemd or
tmux collect them. The terminal never logs to the screen: a stray line would tear the display.
Each handler carries a :class:`~tterm.core.redact.RedactingFilter`, so a password or token that a
library puts in a message is masked before it is written anywhere.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
from pathlib import Path

from tterm.core.files import open_private, private_dir, tighten_file
from tterm.core.redact import REDACTOR, RedactingFilter

LOG_FILENAME = "tterm.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_MARK = "_tterm_handler"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are mode 0600 whatever the umask (they quote accounts and orders)."""

    def _open(self) -> io.TextIOWrapper:
        tighten_file(self.baseFilename)  # a log an older tterm created 0644
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=open_private)


def setup_logging(data_dir: Path, *, stderr: bool = False, level: int = logging.INFO) -> Path:
    """Send log records to ``data_dir/tterm.log`` (and stderr if asked); returns the file path.

    Calling it again replaces the handlers it installed before (tests, re-entry).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
    private_dir(data_dir)
    path = data_dir / LOG_FILENAME
    handlers: list[logging.Handler] = [
        PrivateRotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    ]
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactingFilter(REDACTOR))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    # Third-party clients log raw frames at DEBUG; keep them at INFO even when we go lower.
    for noisy in ("websockets", "aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    return path
