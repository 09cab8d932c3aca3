"""One stylesheet convention: the top-level styles/ folder, installed as coevo_tui.styles.

app.tcss holds what is app-wide; every screen loads its own .tcss through its CSS_PATH
and the dialogs load dialogs.tcss; no coevo widget carries DEFAULT_CSS; no widget is
styled in two files; colours come from theme variables only.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from importlib.resources import files
from pathlib import Path

from textual._color_constants import COLOR_NAME_TO_RGB
from textual.dom import DOMNode

import coevo_tui
from coevo_tui.app import CoevoApp
from coevo_tui.screens.registry import SCREENS

ROOT = Path(__file__).resolve().parents[1]
STYLES = ROOT / "styles"


def _coevo_dom_classes() -> list[type[DOMNode]]:
    """Every widget, screen and app class defined in coevo_tui (its UI modules imported)."""
    for info in pkgutil.walk_packages(coevo_tui.__path__, prefix="coevo_tui."):
        if info.name.split(".")[1] in ("app", "screens", "widgets", "palette"):
            importlib.import_module(info.name)
    found: list[type[DOMNode]] = []
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("coevo_tui."):
            found.append(cls)
    return found


def _css_paths(cls: type[DOMNode]) -> list[Path]:
    """The stylesheets a screen, dialog or app class loads (its own or inherited)."""
    paths = getattr(cls, "CSS_PATH", None) or []
    return [Path(p) for p in (paths if isinstance(paths, list) else [paths])]


def test_the_styles_are_found_where_coevo_is_installed() -> None:
    """No symlink: coevo_tui.styles is the top-level styles/ folder (an editable install
    here; tests/test_wheel.py checks the wheel)."""
    assert not (ROOT / "coevo_tui" / "styles").exists()
    installed = Path(str(files("coevo_tui.styles")))
    assert installed.resolve() == STYLES.resolve()
    assert [p.resolve() for p in _css_paths(CoevoApp)] == [(STYLES / "app.tcss").resolve()]


def test_every_screen_and_dialog_loads_its_stylesheet_and_every_sheet_is_used() -> None:
    classes = _coevo_dom_classes()
    screens = {entry.load() for entry in SCREENS.values() if entry.is_available()}
    used: set[str] = set()
    for cls in classes:
        for path in _css_paths(cls):
            assert path.is_file(), f"{cls.__name__}: {path} is missing"
            assert path.parent.resolve() == STYLES.resolve(), f"{cls.__name__}: {path}"
            used.add(path.name)
    for screen in screens:
        if isinstance(screen, type):  # a factory (run) opens a screen listed itself
            own = [p.name for p in _css_paths(screen)]
            assert own and own != ["app.tcss"], f"{screen.__name__} has no stylesheet"
    names = {cls.__name__: cls for cls in classes}
    for dialog in ("CaseEditorScreen", "RationaleScreen", "SaveVersionScreen",
                   "VersionPicker", "ModelPrompt", "HelpScreen"):
        assert [p.name for p in _css_paths(names[dialog])] == ["dialogs.tcss"], dialog
    sheets = {p.name for p in STYLES.glob("*.tcss")}
    assert sheets == used, f"not loaded by any CSS_PATH: {sorted(sheets - used)}"


def test_no_coevo_widget_carries_default_css() -> None:
    carrying = sorted(cls.__qualname__ for cls in _coevo_dom_classes()
                      if cls.__dict__.get("DEFAULT_CSS", "").strip())
    assert carrying == [], f"move these rules into styles/: {carrying}"


def _rules(sheet: Path) -> list[tuple[str, str]]:
    """(selector list, declarations) of each rule, comments removed."""
    text = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
    return re.findall(r"([^{}]+)\{([^{}]*)\}", text)


def test_no_widget_is_styled_in_two_files() -> None:
    """A type named as a rule's subject (its first compound selector) is styled in one
    file only; a screen's sheet may still place a shared widget by its id."""
    homes: dict[str, set[str]] = {}
    for sheet in sorted(STYLES.glob("*.tcss")):
        for selectors, _ in _rules(sheet):
            for selector in selectors.split(","):
                match = re.match(r"\s*([A-Z][A-Za-z]*)", selector)
                if match:
                    homes.setdefault(match.group(1), set()).add(sheet.name)
    assert "StreamPane" in homes and "CaseTable" in homes  # the check reads the rules
    twice = {name: sorted(where) for name, where in homes.items() if len(where) > 1}
    assert twice == {}


def test_colours_come_from_theme_variables_only() -> None:
    colour_words = set(COLOR_NAME_TO_RGB) - {"transparent"}
    found = []
    for sheet in sorted(STYLES.glob("*.tcss")):
        for selectors, declarations in _rules(sheet):
            for declaration in declarations.split(";"):
                if ":" not in declaration:
                    continue
                prop, value = (part.strip() for part in declaration.split(":", 1))
                words = set(re.findall(r"[a-z_]+", re.sub(r"\$[\w-]+", "", value)))
                if (re.search(r"#[0-9a-fA-F]{3,8}\b|\b(rgb|rgba|hsl|hsla)\(", value)
                        or words & colour_words):
                    found.append(f"{sheet.name}: {selectors.strip()} {{ {prop}: {value} }}")
    assert found == []
