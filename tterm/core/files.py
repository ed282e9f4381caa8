"""Private files and directories: tterm's data and config dirs are 0700, every file in them 0600.

The journal, the stores, the log, the lock file and the config hold account numbers, positions and
orders. Each is created private whatever the process umask: the mode is set explicitly after
creation (a umask can only take bits away, so a permissive one would otherwise give them away),
and a file or directory an older tterm left group- or world-readable is tightened when it is next
opened. Only what this user owns is touched, and never a shared sticky directory such as /tmp or
the home directory itself. On Windows the POSIX mode bits mean little, and nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_POSIX = os.name != "nt"


def _tighten(path: Path, mode: int, *, directory: bool) -> None:
    """chmod ``path`` to ``mode`` if it is ours and looser than that."""
    if not _POSIX:
        return
    try:
        st = path.stat()
    except OSError:
        return
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o777 == mode:
        return
    if directory and (st.st_mode & stat.S_ISVTX or path.resolve() == Path.home().resolve()):
        return  # a shared directory (/tmp) or the home directory: not tterm's to close
    with contextlib.suppress(OSError):
        os.chmod(path, mode)


def private_dir(path: Path | str, *, tighten: bool = True) -> Path:
    """Create ``path`` (and missing parents) with the leaf at mode 0700 (the umask can only take
    bits away from that); with ``tighten``, an existing ``path`` is brought to 0700 too. Stores
    pass ``tighten=False``: the directory of a file they are given is not theirs to change."""
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if tighten:
        _tighten(path, PRIVATE_DIR, directory=True)
    return path


def private_file(path: Path | str) -> Path:
    """Make sure ``path`` exists with mode 0600: created empty if missing, tightened if not."""
    path = Path(path).expanduser()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        _tighten(path, PRIVATE_FILE, directory=False)
        return path
    try:
        if _POSIX:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def tighten_file(path: Path | str) -> None:
    """Mode 0600 for ``path`` if it exists and is ours (a SQLite -wal/-shm file, a rotated log)."""
    _tighten(Path(path), PRIVATE_FILE, directory=False)


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` that creates with mode 0600 whatever the umask (an ``opener`` for ``open()``)."""
    fd = os.open(path, flags, PRIVATE_FILE)
    if _POSIX:
        try:
            st = os.fstat(fd)
            if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != PRIVATE_FILE:
                os.fchmod(fd, PRIVATE_FILE)
        except OSError:
            pass
    return fd


def secure_tree(path: Path | str, *, skip: tuple[str, ...] = ()) -> None:
    """Tighten a data or config dir an older tterm created: the dir to 0700 and each regular file
    directly in it to 0600, except the names in ``skip`` (it never creates the dir).

    The config dir passes ``secrets.toml`` in ``skip``: a secrets file readable by others is
    refused with a message (its contents may already have been read), not quietly fixed.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        return
    _tighten(path, PRIVATE_DIR, directory=True)
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            if child.name not in skip and child.is_file() and not child.is_symlink():
                _tighten(child, PRIVATE_FILE, directory=False)
