"""The wheel: it carries the styles and the demo, and coevo runs from it in a clean venv.

`styles/` and `demo.tcss` live at the repository top. styles/ becomes the package
coevo_tui.styles through pyproject.toml's package-dir (no symlink); demo.tcss reaches the
package through a symlink (coevo_tui/demo/demo.tcss); this checks that the build ships both.
The clean venv (no system site-packages) gets its dependencies from requirements/lock.txt
exactly as ./dev does, so this test talks to the package index through pip, the one test
that does; pip's cache makes later runs fast. Without an index it skips, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a build needs from the repository (the sdist would carry the same).
SOURCE_ITEMS = ("pyproject.toml", "README.md", "demo.tcss", "styles", "coevo_tui")
DEMO_DATA = ("cases.jsonl", "task.txt", "instructions_v1.txt", "demo.tcss")
# pip's words when it cannot reach the index at all (as opposed to a bad lock or wheel).
NO_INDEX = ("NewConnectionError", "Failed to establish a new connection",
            "Temporary failure in name resolution", "Network is unreachable",
            "ConnectTimeoutError", "ProxyError")


def _run(cmd: list[str], *, cwd: Path, timeout: float = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _clean_env() -> dict[str, str]:
    """The environment minus anything that would let the dev venv or the source tree leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the source, so the build leaves nothing in the repo."""
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCE_ITEMS:
        item = ROOT / name
        if item.is_dir():
            # symlinks=True keeps coevo_tui/demo/demo.tcss a link, as in a fresh clone.
            shutil.copytree(item, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(item, src / name)
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--quiet", "-w", work / "dist", src], cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = (work / "dist").glob("coevo-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A clean venv with the locked dependencies and the wheel, nothing else."""
    where = tmp_path_factory.mktemp("venv")
    venv = where / "venv"
    done = _run([sys.executable, "-m", "venv", venv], cwd=where, env=_clean_env())
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    done = _run([python, "-m", "pip", "install", "--quiet", "--no-compile", "--require-hashes",
                 "-r", ROOT / "requirements" / "lock.txt"], cwd=where, env=_clean_env())
    if done.returncode != 0 and any(word in done.stderr for word in NO_INDEX):
        pytest.skip("the package index is not reachable, so the locked dependencies "
                    "cannot be installed into a clean venv")
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run([python, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps", wheel],
                cwd=where, env=_clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_wheel_carries_the_styles_and_the_demo(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        # The linked files arrive as their contents, not as links or empty entries.
        for style in sorted((ROOT / "styles").glob("*.tcss")):
            entry = f"coevo_tui/styles/{style.name}"
            assert entry in names
            assert whl.read(entry) == style.read_bytes()
        for data in DEMO_DATA:
            entry = f"coevo_tui/demo/{data}"
            assert entry in names
            assert whl.read(entry) == (ROOT / "coevo_tui" / "demo" / data).read_bytes()
        assert whl.read("coevo_tui/demo/demo.tcss") == (ROOT / "demo.tcss").read_bytes()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "coevo = coevo_tui.__main__:main" in whl.read(entry_points).decode()
    assert "coevo_tui/styles/app.tcss" in names


def test_every_package_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages by hand (`find` cannot see coevo_tui.styles, which
    is mapped from styles/): a package missing from that list would be missing from the
    wheel, though every test run from the source tree would pass."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "coevo_tui").rglob("__init__.py")}
    assert "coevo_tui.screens.dialogs" in found
    assert set(config["packages"]) == found | {"coevo_tui.styles"}
    assert config["package-dir"] == {"coevo_tui.styles": "styles"}


# Runs inside the clean venv: open a project in the real app, headless, and report what the
# app's stylesheet was built from.
APP_PROBE = r"""
import asyncio, importlib.util, json, sys
from pathlib import Path

import coevo_tui
from coevo_tui.app import make_app
from coevo_tui.commands.demo import demo_stylesheet
from textual.css.stylesheet import Stylesheet


def rule_key(rule):
    # A rule's selectors and declarations (RuleSet.css fails on some of Textual's own rules).
    return rule.selectors, repr(sorted(rule.styles.get_rules().items()))


async def probe(path):
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app_tcss = Path(coevo_tui.__file__).parent / "styles" / "app.tcss"
        own = Stylesheet(variables=app.get_css_variables())
        own.read(app_tcss)
        own.parse()
        loaded = {rule_key(rule) for rule in app.stylesheet.rules}
        return {
            "startup_error": app.startup_error,
            "sources": sorted(p for p, _ in app.stylesheet.source if p),
            "app_rules": len(own.rules),
            "app_rules_loaded": all(rule_key(rule) in loaded for rule in own.rules),
        }


from textual.app import App

sheet = Stylesheet(variables=App().get_css_variables())  # the default theme's $variables
sheet.read(demo_stylesheet())
sheet.parse()  # raises on a rule Textual cannot read
report = {
    "package": coevo_tui.__file__,
    "has_cases_screen": importlib.util.find_spec("coevo_tui.screens.cases") is not None,
    "demo_rules": len(sheet.rules),
}
if report["has_cases_screen"]:
    report["plain"] = asyncio.run(probe(sys.argv[1]))
    report["demo"] = asyncio.run(probe(sys.argv[2]))
print(json.dumps(report))
"""


def _coevo(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([venv / "bin" / "coevo", *args], cwd=cwd, timeout=120, env=_clean_env())


def test_installed_coevo_demo_command_writes_the_demo(venv: Path, tmp_path: Path) -> None:
    done = _coevo(venv, "demo", "d.db", "--no-open", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "d.db" in done.stdout
    assert (tmp_path / "d.db").stat().st_size > 0
    # A second run on a file that is not the demo is refused with one line.
    (tmp_path / "notes.txt").write_text("mine\n")
    done = _coevo(venv, "demo", "notes.txt", "--no-open", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_installed_app_starts_with_its_styles(venv: Path, tmp_path: Path) -> None:
    assert _coevo(venv, "demo", "demo.db", "--no-open", cwd=tmp_path).returncode == 0
    (tmp_path / "probe.py").write_text(APP_PROBE)
    done = _run([venv / "bin" / "python", "probe.py", "plain.db", "demo.db"],
                cwd=tmp_path, timeout=120, env=_clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    site_packages = str(venv / "lib")
    assert report["package"].startswith(site_packages), "coevo ran from outside the venv"
    assert report["demo_rules"] > 0  # the installed demo.tcss is there and parses
    if not report["has_cases_screen"]:
        pytest.skip("the Cases screen (the app's first screen) is not in the wheel yet")

    for which in ("plain", "demo"):
        opened = report[which]
        assert opened["startup_error"] is None
        assert opened["app_rules"] > 0 and opened["app_rules_loaded"]
        assert any(p.startswith(site_packages) and p.endswith("/coevo_tui/styles/app.tcss")
                   for p in opened["sources"]), opened["sources"]
    assert any(p.endswith("/coevo_tui/demo/demo.tcss") for p in report["demo"]["sources"])
    assert not any(p.endswith("demo.tcss") for p in report["plain"]["sources"])
