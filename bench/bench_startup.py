"""Start-up: from ``tterm`` being run to its first interactive frame, and what the imports cost.

Two figures, each the median and worst of ``--runs`` fresh processes:

- **start to first interactive frame**: the real ``tterm`` command (the paper broker, a fresh
  config and data dir) in a 200x50 pty, from just before the process is started until the first
  frame drawn after the terminal is ready for keys (``TtermApp.ready``: the engine started, the
  snapshot loaded, the watchlist shown). The child wraps the app's start-up to note that moment
  and quits; nothing else is changed.
- **imports**: the CPU time of ``python -c "import tterm.cli, tterm.runtime, tterm.tui.app"``
  less an empty interpreter's, the part lazy imports can shrink (``python -X importtime -c
  "import tterm.cli"`` shows the detail).

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


def first_frame() -> tuple[float, float]:
    """Seconds from spawning ``tterm`` in a 200x50 pty to its first interactive frame, and the CPU
    seconds the process used until it quit right after it (a figure the machine's load moves less)."""
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
        done, _, usage = os.wait4(pid, os.WNOHANG)
        if done:
            pid = 0
            break
    if pid:
        os.kill(pid, signal.SIGKILL)
        _, _, usage = os.wait4(pid, 0)
    os.close(fd)
    cpu = usage.ru_utime + usage.ru_stime
    try:
        at = float(ready.read_text())
    except (OSError, ValueError):
        at = float("nan")
    shutil.rmtree(tmp, ignore_errors=True)
    return at - t0, cpu


def import_time() -> float:
    """CPU seconds ``import tterm.cli, tterm.runtime, tterm.tui.app`` adds to an empty interpreter
    (what plain ``tterm`` imports before its first frame; CPU time, so the machine's load moves it less)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))

    def cpu(code: str) -> float:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{code!r} failed")
        return usage.ru_utime + usage.ru_stime

    return cpu("import tterm.cli, tterm.runtime, tterm.tui.app") - cpu("pass")


def figures_startup(quick: bool = False) -> list[object]:
    from benchlib import Figure, median

    n = 3 if quick else 5
    runs = [first_frame() for _ in range(n)]
    frames = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    imports = [import_time() for _ in range(n)]
    where = "paper broker, real pty 200x50"
    note = f"worst of {n} as p99"
    return [
        Figure("start to first interactive frame", median(frames), "s", max(frames), "<= 0.8", where=where, note=note),
        Figure("start to first frame, CPU", median(cpus), "s", max(cpus), where=where, note=note),
        Figure("imports before the first frame, CPU", median(imports), "s", max(imports), note=note),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child()
        return
    runs = [first_frame() for _ in range(args.runs)]
    imports = [import_time() for _ in range(args.runs)]
    print(f"start to first interactive frame: {' '.join(f'{w:.3f}' for w, _ in runs)} s (goal <= 0.8 s)")
    print(f"  CPU used until then:            {' '.join(f'{c:.3f}' for _, c in runs)} s")
    print(f"imports before the first frame, CPU: {' '.join(f'{x:.3f}' for x in imports)} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
