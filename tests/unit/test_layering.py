"""The engine (core, risk, brokers, hub) never imports Textual: checked in the source and at run time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE_PACKAGES = ("core", "risk", "brokers", "hub")
FORBIDDEN = "textual"


def _engine_files() -> list[Path]:
    return sorted(p for pkg in ENGINE_PACKAGES for p in (REPO / "tterm" / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _forbidden_imports(path: Path, root: Path = REPO) -> list[str]:
    """Every import of textual in the file, at any depth (functions, TYPE_CHECKING blocks...),
    plus ``importlib.import_module("textual...")`` / ``__import__("textual...")`` calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        for name in names:
            if name == FORBIDDEN or name.startswith(FORBIDDEN + "."):
                found.append(f"{path.relative_to(root)}:{node.lineno}: imports {name}")
    return found


def test_engine_packages_exist() -> None:
    files = _engine_files()
    assert {p.relative_to(REPO / "tterm").parts[0] for p in files} == set(ENGINE_PACKAGES)
    assert REPO / "tterm" / "core" / "journal.py" in files


def test_no_textual_import_in_engine_source() -> None:
    problems = [line for path in _engine_files() for line in _forbidden_imports(path)]
    assert problems == []


def test_the_static_check_catches_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "def f():\n"
        "    from textual.app import App\n"
        "    import textual\n"
        "    return importlib.import_module('textual.widgets')\n"
    )
    assert _forbidden_imports(sample, root=tmp_path) == [
        "sample.py:3: imports textual.app",
        "sample.py:4: imports textual",
        "sample.py:5: imports textual.widgets",
    ]


def test_no_textual_in_sys_modules_after_importing_the_engine() -> None:
    modules = [_module_name(p) for p in _engine_files()]
    script = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


#: What sits above the core: the core may import none of it (it is the ground floor; adapters
#: implement its Broker port, never the other way round).
ABOVE_CORE = ("tterm.brokers", "tterm.risk", "tterm.hub", "tterm.tui", "tterm.config", "tterm.runtime", "tterm.cli")


def _imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_core_imports_nothing_above_it() -> None:
    core = sorted((REPO / "tterm" / "core").rglob("*.py"))
    assert REPO / "tterm" / "core" / "broker.py" in core  # the Broker contract lives in the core
    problems = [
        f"{path.relative_to(REPO)}:{line}: imports {name}"
        for path in core
        for line, name in _imports_of(path)
        if any(name == up or name.startswith(up + ".") for up in ABOVE_CORE)
    ]
    assert problems == []


def test_importing_the_core_loads_nothing_above_it() -> None:
    modules = [_module_name(p) for p in sorted((REPO / "tterm" / "core").rglob("*.py"))]
    script = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"above = {ABOVE_CORE!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == a or m.startswith(a + '.') for a in above))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
