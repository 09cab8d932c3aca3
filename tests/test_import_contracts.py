"""The layering of coevo's modules, stated as import-linter contracts in pyproject.toml.

`lint-imports` checks them (the command line over the app over screens over widgets over
the core; no Textual in the core; widgets never import screens; screens import no other
screen). Each contract is also shown to break on the wrong import it forbids, in a copy of
the package, so a contract that no longer says anything fails here too. Last, the graph of
the imports that run (not those under `if TYPE_CHECKING:`) has no cycle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package and pyproject.toml in `where` (no cache: it would
    leave a folder behind)."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: install the test requirements"
    env = {**os.environ, "PYTHONPATH": str(where)}  # this copy of coevo_tui, not another
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# A wrong import added to one module, and the contract that must catch it.
WRONG_IMPORTS = {
    "widget imports a screen": (
        "widgets/footer.py", "import coevo_tui.screens.cases",
        "Widgets never import screens, dialogs or the app BROKEN"),
    "store imports Textual": (
        "store/schema.py", "import textual.widgets",
        "The core and the headless commands never import Textual BROKEN"),
    "command imports Textual through a widget": (
        "commands/label.py", "import coevo_tui.widgets.verdict_bar",
        "The core and the headless commands never import Textual BROKEN"),
    "domain imports the store": (
        "domain/model.py", "import coevo_tui.store.schema",
        "Layers: command line > app, commands > screens > widgets > jobs > core BROKEN"),
    "screen imports a screen": (
        "screens/overview.py", "import coevo_tui.screens.compare",
        "Screens import no other screen: only dialogs, the registry and the base BROKEN"),
    "dialog imports a screen": (
        "screens/dialogs/rationale.py", "import coevo_tui.screens.label",
        "Screens import no other screen: only dialogs, the registry and the base BROKEN"),
    "the app imports a command": (
        "app.py", "import coevo_tui.commands.evaluate",
        "Layers: command line > app, commands > screens > widgets > jobs > core BROKEN"),
}


@pytest.mark.parametrize("case", sorted(WRONG_IMPORTS))
def test_a_wrong_import_breaks_its_contract(case: str, tmp_path: Path) -> None:
    module, line, broken = WRONG_IMPORTS[case]
    shutil.copytree(ROOT / "coevo_tui", tmp_path / "coevo_tui", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "coevo_tui" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert broken in done.stdout, done.stdout


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    without recursion): each is a set of modules that import each other in a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_import_cycles_are_found() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z", "a.w"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    graph.add_import(importer="a.w", imported="a.x")
    assert import_cycles(graph) == [["a.x", "a.y", "a.z"]]


def test_no_import_cycles_at_runtime() -> None:
    """Imports inside functions count (they run, later); imports under TYPE_CHECKING do
    not (they never run)."""
    graph = grimp.build_graph("coevo_tui", exclude_type_checking_imports=True,
                              cache_dir=None)
    assert "coevo_tui.screens.compare" in graph.modules  # the package was found
    cycles = import_cycles(graph)
    described = []
    for cycle in cycles:
        chain = graph.find_shortest_chain(importer=cycle[0], imported=cycle[1]) or ()
        back = graph.find_shortest_chain(importer=cycle[1], imported=cycle[0]) or ()
        described.append(" -> ".join([*chain, *back[1:]]))
    assert not cycles, "import cycles:\n" + "\n".join(described)
