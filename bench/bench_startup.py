"""Start-up: from ``tterm`` being run to its first interactive frame, and what the imports cost.

Two figures, each the median and worst of ``--runs`` fresh processes:

- **start to first interactive frame**: the real ``tterm`` command (the paper broker, a fresh
  config and data dir) in a 200x50 pty, from just before the process is started until the first
  frame drawn after the terminal is ready for keys (``TtermApp.ready``: the engine started, the
  snapshot loaded, the watchlist shown). The child wraps the app's start-up to note that moment
  and quits; nothing else is changed.
- **imports**: ``python -c "import tterm.cli, tterm.tui.app"`` less an empty interpreter, the
  part lazy imports can shrink. ``python -X importtime -c "import tterm.cli"`` shows the detail.

Goal from the speed issue: start to first interactive frame <= 0.8 s. Figures only.
Run: ``python bench/bench_startup.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child() -> None:
    """In the pty: run ``tterm`` as its console script does, noting the first interactive frame."""
    out = os.environ["TTERM_BENCH_READY_FILE"]
    from tterm import cli
    from tterm.tui import app as tui_app

    original = tui_app.TtermApp._startup

    async def startup(self: tui_app.TtermApp) -> None:
        await original(self)

        def drawn() -> None:
            Path(out).write_text(f"{time.time():.6f}\n")
            self.exit()

        self.call_after_refresh(drawn)

    tui_app.TtermApp._startup = startup  # type: ignore[method-assign]
    sys.argv = ["tterm"]
    cli.main([])


def first_frame() -> float:
    """Seconds from spawning ``tterm`` in a 200x50 pty to its first interactive frame."""
    import fcntl
    import struct
    import termios

    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    ready = tmp / "ready"
    env = {k: v for k, v in os.environ.items() if k != "COLORTERM"}
    env.update(TERM="xterm-256color", TTERM_CONFIG_DIR=str(tmp / "cfg"), TTERM_DATA_DIR=str(tmp / "data"),
               TTERM_BENCH_READY_FILE=str(ready))  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    t0 = time.time()
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, __file__, "--child"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                if not os.read(fd, 65536):
                    break
            except OSError:
                break
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            pid = 0
            break
    if pid:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    try:
        at = float(ready.read_text())
    except (OSError, ValueError):
        at = float("nan")
    shutil.rmtree(tmp, ignore_errors=True)
    return at - t0


def import_time() -> float:
    """Seconds ``import tterm.cli, tterm.tui.app`` adds to an empty interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        return time.perf_counter() - t0

    return wall("import tterm.cli, tterm.tui.app") - wall("pass")


def figures_startup(quick: bool = False) -> list[object]:
    from benchlib import Figure, median

    runs = 3 if quick else 5
    frames = [first_frame() for _ in range(runs)]
    imports = [import_time() for _ in range(runs)]
    where = "paper broker, real pty 200x50"
    return [
        Figure(
            "start to first interactive frame",
            median(frames),
            "s",
            max(frames),
            "<= 0.8",
            where=where,
            note=f"worst of {runs} as p99",
        ),
        Figure("imports (tterm.cli + tterm.tui.app)", median(imports), "s", max(imports)),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child()
        return
    frames = [first_frame() for _ in range(args.runs)]
    imports = [import_time() for _ in range(args.runs)]
    print(f"start to first interactive frame: {' '.join(f'{x:.3f}' for x in frames)} s (goal <= 0.8 s)")
    print(f"imports (tterm.cli + tterm.tui.app): {' '.join(f'{x:.3f}' for x in imports)} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
