"""Has the terminal gone away? The right question for each Textual driver.

In a real terminal (Linux driver) stdin is the terminal: it is gone when it is no longer a TTY
or hung up (an SSH session dropped). Under ``tterm serve`` (textual-serve's web driver) stdin is
a pipe from the server and is never a TTY; the session is gone when the server's end of the pipe
closed. Asking ``isatty()`` there ended every browser session after about five seconds.
"""

from __future__ import annotations

import os
import select


def terminal_gone(fd: int, *, web: bool) -> bool:
    """True when the terminal (``web=False``) or the web server's pipe (``web=True``) on ``fd`` is gone."""
    if not web:
        try:
            if not os.isatty(fd):
                return True
        except (OSError, ValueError):
            return True
    if not hasattr(select, "poll"):  # Windows: only the TTY check
        return False
    poller = select.poll()
    try:
        # An empty event mask still reports hang-up, error and a closed descriptor, and reads nothing.
        poller.register(fd, 0)
        events = poller.poll(0)
    except (OSError, ValueError):
        return True
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in events)


__all__ = ["terminal_gone"]
