"""Long work belongs to the app (coevo_tui/jobs.py): a run started on Compare goes on when
Compare is left, is followed (not started again) from the other screen, shows its progress
on whatever screen is up, stops with X from anywhere, and ends with one notification."""

from __future__ import annotations

from pathlib import Path

import pytest

from coevo_tui.app import CoevoApp
from coevo_tui.jobs import TestSetRun
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.screens.overview import OverviewScreen
from coevo_tui.store import NewCase, Store
from coevo_tui.widgets.jobs_line import JobsLine
from pilot_support import notifications, open_screen, screen_text, wait_for, wait_for_screen

CASES = [f"m{i}" for i in range(6)]


@pytest.fixture
async def two_versions(project_path: Path) -> Path:
    """Two versions, six active cases, no answer at all."""
    async with await Store.open(project_path, instructions="Allow trash talk.") as store:
        await store.versions.create("Allow trash talk. Remove threats.", note="threats")
        await store.cases.add_many([NewCase(input=f"message {ext}", ext_id=ext)
                                    for ext in CASES], source_name="test")
    return project_path


async def _answers_per_case(project: Path, version: int) -> dict[str, int]:
    async with await Store.open(project) as store:
        v = await store.versions.by_number(version)
        counts = {}
        for case in await store.cases.all():
            counts[case.ext_id] = sum(1 for o in await store.outputs.of_case(case.id)
                                      if o.version_id == v.id and o.status.value == "ok")
        return counts


async def _compare_with_a_held_run(app: CoevoApp, pilot, fake: FakeModel) -> CompareScreen:
    fake.hold()
    screen = await open_screen(app, pilot, "compare", idle=False)  # its streams are held
    assert isinstance(screen, CompareScreen)
    await wait_for(pilot, lambda: screen.list_ready and screen.case is not None, "Compare")
    await pilot.press("R")
    await wait_for(pilot, lambda: screen.run_in_progress(), "the run started")
    return screen


async def test_compares_run_goes_on_when_compare_is_left_and_ends_with_a_notification(
        two_versions: Path, make_test_app, fake_provider: FakeModel) -> None:
    app = make_test_app(two_versions)
    async with app.run_test(size=(100, 30)) as pilot:
        await _compare_with_a_held_run(app, pilot, fake_provider)
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        (run,) = app.jobs.running()
        assert isinstance(run, TestSetRun) and run.version.number == 2
        assert any("goes on" in note for note in notifications(app))
        await wait_for(pilot, lambda: "run v2" in screen_text(app), "progress on Cases")
        fake_provider.release()
        await wait_for(pilot, lambda: not run.running, "the run ended")
        await wait_for(pilot, lambda: any(n.startswith("Run of v2 done")
                                          for n in notifications(app)),
                       "one notification says how it ended")
        assert sum(n.startswith("Run of v2") for n in notifications(app)) == 1
    # Every active case answered once under v2: nothing was lost or called twice.
    assert await _answers_per_case(two_versions, 2) == {ext: 1 for ext in CASES}


async def test_the_run_is_followed_not_started_again_from_another_screen(
        two_versions: Path, make_test_app, fake_provider: FakeModel) -> None:
    app = make_test_app(two_versions)
    async with app.run_test(size=(100, 30)) as pilot:
        await _compare_with_a_held_run(app, pilot, fake_provider)
        (run,) = app.jobs.running()
        await pilot.press("escape")
        # R on Cases: the Label screen over the same version and model shows that run.
        await wait_for_screen(app, pilot, CasesScreen)
        await pilot.press("R")
        await wait_for(pilot, lambda: getattr(app.screen, "run_summary", None) is not None,
                       "Label shows the run")
        assert app.jobs.running() == [run]
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await app.open_screen("compare")  # (not open_screen: the run never lets it settle)
        screen = await wait_for_screen(app, pilot, CompareScreen)
        await wait_for(pilot, lambda: screen.run_in_progress(), "Compare follows the run")
        assert app.jobs.running() == [run]
        fake_provider.release()
        await wait_for(pilot, lambda: not run.running, "the run ended")
    assert await _answers_per_case(two_versions, 2) == {ext: 1 for ext in CASES}


async def test_X_stops_the_run_from_any_screen_and_the_jobs_line_shows_it(
        two_versions: Path, make_test_app, fake_provider: FakeModel) -> None:
    app = make_test_app(two_versions)
    async with app.run_test(size=(100, 30)) as pilot:
        await _compare_with_a_held_run(app, pilot, fake_provider)
        (run,) = app.jobs.running()
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await app.open_screen("overview")
        await wait_for_screen(app, pilot, OverviewScreen)
        line = app.screen.query_one(JobsLine)
        await wait_for(pilot, lambda: line.display and "run v2" in screen_text(app),
                       "the jobs line shows the run")
        await pilot.press("X")
        await wait_for(pilot, lambda: not run.running, "X stopped the run")
        assert run.stopped
        await wait_for(pilot, lambda: not line.display, "the jobs line is gone")
        await wait_for(pilot, lambda: any(n.startswith("Run of v2 stopped")
                                          for n in notifications(app)),
                       "the notification says it stopped")
        fake_provider.release()
    # Stopped calls store nothing: what is stored is whole, and a new run resumes the rest.
    counts = await _answers_per_case(two_versions, 2)
    assert set(counts.values()) <= {0, 1}


async def test_X_without_a_job_says_so(two_versions: Path, make_test_app) -> None:
    app = make_test_app(two_versions)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_screen(app, pilot, "overview")
        await pilot.press("X")
        await wait_for(pilot, lambda: "No long job is running." in notifications(app), "said so")
