"""SVG snapshots of the Candidates screen (the review queue) at 80x24 and 120x40, and at
80x24 without colour with rejected candidates shown.

The project is fixed (rules, cases and candidates with their origins and reasons; no
model is called), so the screen is the same on every run. Regenerate after a deliberate
change with ``pytest tests/test_candidates_snapshots.py --snapshot-update`` and look at
the SVGs under tests/__snapshots__/test_candidates_snapshots/ before committing them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coevo_tui.app import CoevoApp, make_app
from coevo_tui.domain.model import CaseSource, NewRule
from coevo_tui.screens.candidates import CandidatesScreen
from coevo_tui.store import NewCase, Store

# Named, so the pictures do not depend on whether the offline model is installed here
# (without a model, the assistant is the offline one where it is installed).
ASSISTANT = "coevo-fake/assistant"

INSTRUCTIONS = ("You moderate game chat.\n1. No slurs.\n2. No threats of real violence.\n"
                "3. Trash talk is fine.\n4. Flag doxxing.")
RULES = [NewRule(1, "No slurs"), NewRule(2, "No real threats"),
         NewRule(3, "Trash talk is fine"), NewRule(4, "Flag doxxing")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "moderation.db"

    async def build() -> None:
        async with await Store.open(path, instructions=INSTRUCTIONS) as store:
            version = await store.versions.latest()
            await store.rules.replace(version.id, RULES)
            await store.cases.add_many([NewCase("gg ez", ext_id="m1", rule_number=3)],
                                       source_name="snapshot")
            m1 = await store.cases.by_ext_id("m1")

            def generated(text: str, rule: int, reason: str) -> NewCase:
                return NewCase(text, source=CaseSource.GENERATED, rule_number=rule,
                               reason=reason, origin_version_id=version.id)

            added = await store.cases.add_candidates([
                generated("i know where u live lol, see u saturday", 2,
                          "A threat with a day but no place: real or banter?"),
                generated("ur aim is so bad it should be illegal", 3,
                          "Hyperbole about skill that borrows the language of law."),
                generated("my cousin's address is on his stream, go say hi", 4,
                          "Doxxing by pointing elsewhere, not by stating the address."),
                generated("ching chong go back to your server", 1,
                          "A slur dressed up as a joke about servers."),
                NewCase("gg ez, delete the game", source=CaseSource.SIMILAR,
                        origin_case_id=m1.id, rule_number=3,
                        reason="The same gloat with a push to quit.",
                        origin_version_id=version.id),
            ])
            await store.cases.reject([added[3].id])

    asyncio.run(build())
    return path


def _opened(*keys: str):
    """A run_before that opens the Candidates screen, waits for the queue, presses
    `keys`, and waits for the workers again."""

    async def run_before(pilot) -> None:
        app: CoevoApp = pilot.app
        await pilot.pause()
        await app.workers.wait_for_complete()
        await app.open_screen("candidates")
        screen = app.screen
        for _ in range(500):
            if isinstance(screen, CandidatesScreen) and screen._loaded and not screen.workers:
                break
            await pilot.pause(0.02)
        else:
            raise AssertionError("the Candidates screen never loaded")
        if keys:
            await pilot.press(*keys)
        for _ in range(3):
            await pilot.pause()
            await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_candidates_screen(snap_compare, project: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(project, keymap={}, assistant_model=ASSISTANT), terminal_size=size,
                        run_before=_opened("down"))


def test_candidates_screen_with_rejected_without_colour(
        snap_compare, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_app(project, keymap={}, assistant_model=ASSISTANT), terminal_size=(80, 24),
                        run_before=_opened("r", "end"))
