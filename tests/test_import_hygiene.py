"""The core packages never import Textual (CONVENTIONS: the TUI and the commands share it)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import coevo_tui

# The core and the headless commands.
CORE = ("domain", "store", "llm", "assist", "services", "commands", "demo", "session")


def _core_modules() -> list[str]:
    names = []
    for pkg in CORE:
        names.append(f"coevo_tui.{pkg}")
        path = [str(p) for p in (coevo_tui.__path__)]
        for info in pkgutil.walk_packages([f"{path[0]}/{pkg}"], prefix=f"coevo_tui.{pkg}."):
            names.append(info.name)
    return names


def test_core_modules_exist() -> None:
    assert "coevo_tui.store.store" in _core_modules()


def test_core_never_imports_textual() -> None:
    modules = _core_modules()
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported Textual: {out.stdout.strip()}"
