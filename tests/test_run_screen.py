"""`R`: running the whole test set from the TUI (the Label screen's run panel), with the fake
litellm provider: progress, every active case answered, cancel, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from coevo_tui.app import CoevoApp
from coevo_tui.domain.model import CaseState
from coevo_tui.llm.client import ModelClient
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.llm.runner import RunSummary
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.jobs import TestSetRun
from coevo_tui.widgets.run_line import run_line, text_bar
from coevo_tui.store import NewCase, Store

from pilot_support import notifications, screen_text, settle, wait_for, wait_for_screen

ACTIVE = [f"a{i}" for i in range(1, 7)]


@pytest.fixture
async def project(project_path: Path) -> Path:
    store = await Store.open(project_path, instructions="Answer briefly.")
    try:
        await store.cases.add_many(
            [NewCase(input=f"message number {i}", ext_id=ext) for i, ext in enumerate(ACTIVE)]
            + [NewCase(input="archived one", ext_id="gone", state=CaseState.ARCHIVED),
               NewCase(input="a candidate", ext_id="maybe", state=CaseState.CANDIDATE)],
            source_name="test")
    finally:
        await store.close()
    return project_path


async def outputs_by_case(project: Path) -> dict[str, list[tuple[str, str]]]:
    store = await Store.open(project)
    try:
        result: dict[str, list[tuple[str, str]]] = {}
        for case in await store.cases.all():
            result[case.ext_id] = [(o.status.value, o.text)
                                   for o in await store.outputs.of_case(case.id)]
        return result
    finally:
        await store.close()


async def press_run_from_cases(app: CoevoApp, pilot) -> LabelScreen:
    """`R` on the Cases screen, once the app has settled: the Label screen with its run."""
    await settle(app, pilot)
    assert isinstance(app.screen, CasesScreen)
    await pilot.press("R")
    return await wait_for_screen(app, pilot, LabelScreen)


async def every_active_case_answered_once(project: Path) -> None:
    final = await outputs_by_case(project)
    for i, ext in enumerate(ACTIVE):
        assert final[ext] == [("ok", f"Reply to: message number {i}")], ext


async def run_then_leave_label(app: CoevoApp, pilot) -> tuple[LabelScreen, TestSetRun]:
    """`R` on Cases, then `esc` back to Cases once the run has started (the model being
    held, it is still going)."""
    screen = await press_run_from_cases(app, pilot)
    await wait_for(pilot, lambda: screen.run_summary is not None, "run started")
    run = app.jobs.latest("run")
    assert run is not None and run.running
    await pilot.press("escape")
    await wait_for_screen(app, pilot, CasesScreen)
    return screen, run


async def test_R_runs_every_active_case_and_shows_progress(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    fake_provider.hold()  # the run waits before the first token: progress shows 0/6
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await press_run_from_cases(app, pilot)
        # "0/6" shows in the status bar's jobs too ("run v1 0/6"), maybe before the panel.
        await wait_for(pilot, lambda: screen.run_summary is not None
                       and "Run v1" in screen_text(app) and "0/6" in screen_text(app),
                       "run panel at 0/6")
        assert screen.running
        assert "x stop" in screen_text(app)
        assert screen.check_action("stop_run", ()) is True
        assert screen.check_action("run_all", ()) is False
        fake_provider.release()
        await wait_for(pilot, lambda: not screen.running, "the run ends")
        await wait_for(pilot, lambda: "Run done v1" in screen_text(app), "final panel")
        text = screen_text(app)
        assert "6/6" in text and "0 errors" in text and "$0.0000" in text
        assert screen.pane.output is not None  # the case on screen got its answer
        assert any("Run done" in message for message in notifications(app))
    outputs = await outputs_by_case(project)
    for ext in ACTIVE:
        assert len(outputs[ext]) == 1 and outputs[ext][0][0] == "ok", ext
    assert outputs["gone"] == [] and outputs["maybe"] == []  # only active cases run


async def test_errors_are_counted_and_stored_on_their_case(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    from coevo_tui.llm.client import RetryPolicy

    fake_provider.fail_next("error", count=2)  # the first case's two attempts fail
    client = ModelClient(concurrency=1, retry=RetryPolicy(max_attempts=2, base_delay=0.001,
                                                          max_delay=0.002))
    app = make_test_app(project, client=client)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await press_run_from_cases(app, pilot)
        await wait_for(pilot, lambda: not screen.running and screen.run_summary is not None,
                       "the run ends")
        await settle(app, pilot)
        # The panel redraws on its own timer (10 a second): wait for its tick.
        await wait_for(pilot, lambda: "1 error" in screen_text(app), "the final panel")
        assert screen.run_summary.errors == 1
        assert "1 error" in screen_text(app)
        assert screen.pane.state == "error"  # the first case, on screen, shows its error
        assert "fake server error" in screen_text(app)
    outputs = await outputs_by_case(project)
    assert sorted(status for ext in ACTIVE for status, _ in outputs[ext]) == \
        ["error"] + ["ok"] * 5


async def test_cancelling_a_run_stores_nothing_half_done_and_R_resumes(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    fake_provider.configure(chunks=6, chunk_delay=0.05)
    client = ModelClient(concurrency=2)
    app = make_test_app(project, client=client)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await press_run_from_cases(app, pilot)
        # Stop while answers are in flight: at least one stored, others mid-stream.
        # The case on screen must be answered already: a stop while it is mid-stream
        # makes the screen stream it on its own, which would race the resume below.
        def mid_stream() -> bool:
            run = app.jobs.latest("run")
            return (screen.run_summary is not None and screen.run_summary.done >= 1
                    and screen.case is not None and isinstance(run, TestSetRun)
                    and run.running and screen.case.id not in run.pending
                    and any(run.streams.values()))

        await wait_for(pilot, mid_stream, "a case mid-stream")
        await pilot.press("x")
        await wait_for(pilot, lambda: not screen.running, "the run stops")
        summary = screen.run_summary
        assert summary is not None and summary.halted
        assert "Run stopped" in screen_text(app) and "R resumes" in screen_text(app)
        assert fake_provider.streams_cancelled >= 1
        first = await outputs_by_case(project)
        stored = [ext for ext in ACTIVE if first[ext]]
        assert 1 <= len(stored) < len(ACTIVE)
        for ext in stored:  # every stored answer is whole, none partial
            assert first[ext] == [("ok", f"Reply to: message number {ACTIVE.index(ext)}")]
        calls_before = fake_provider.calls

        assert fake_provider.streams_started == (fake_provider.streams_finished
                                                 + fake_provider.streams_cancelled)
        await pilot.press("R")  # resume: only the unfinished cases are called
        # A new summary that is not halted: the resumed run started and ran to the end
        # (polling `running` alone can miss a short run on a loaded machine).
        await wait_for(pilot, lambda: screen.run_summary is not summary
                       and not screen.running and screen.run_summary is not None
                       and not screen.run_summary.halted,
                       "the resumed run ends")
        resumed = screen.run_summary
        assert resumed is not None and not resumed.halted
        assert resumed.skipped == len(stored)
        assert fake_provider.calls - calls_before == len(ACTIVE) - len(stored)
    await every_active_case_answered_once(project)


async def test_leaving_the_screen_leaves_the_run_going(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    fake_provider.hold()
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        _, run = await run_then_leave_label(app, pilot)
        await wait_for(pilot, lambda: any("goes on" in message
                                          for message in notifications(app)), "notification")
        assert run.running
        await wait_for(pilot, lambda: "run v1 0/6" in screen_text(app), "progress on Cases")
        fake_provider.release()
        await wait_for(pilot, lambda: not run.running, "the run ends in the background")
        await wait_for(pilot, lambda: any("Run of v1 done" in message
                                          for message in notifications(app)), "its end is told")
        await wait_for(pilot, lambda: "run v1" not in screen_text(app), "progress gone")
    await every_active_case_answered_once(project)


async def test_R_while_the_run_goes_on_shows_it_and_x_stops_it(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    fake_provider.hold()
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        first, run = await run_then_leave_label(app, pilot)
        await pilot.press("R")  # (not press_run_from_cases: it waits for every worker)
        second = await wait_for_screen(app, pilot, LabelScreen)
        assert isinstance(second, LabelScreen) and second is not first
        await wait_for(pilot, lambda: second.run_summary is not None, "the run's panel")
        assert app.jobs.latest("run") is run and second.run_summary is run.summary  # not restarted
        assert "Run v1" in screen_text(app) and "x stop" in screen_text(app)
        await pilot.press("x")
        await wait_for(pilot, lambda: not run.running, "the run stops")
        assert run.summary is not None and run.summary.halted
        await wait_for(pilot, lambda: "R resumes" in screen_text(app), "the panel says so")
        shown = second.case.ext_id if second.case is not None else None
        fake_provider.release()
        await settle(app, pilot)
    # Only the case on screen got an answer: after the stop it streams on its own.
    assert [ext for ext, outputs in (await outputs_by_case(project)).items() if outputs] \
        in ([], [shown])


async def test_a_second_R_resumes_nothing_when_everything_is_answered(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await press_run_from_cases(app, pilot)
        await wait_for(pilot, lambda: not screen.running and screen.run_summary is not None,
                       "the run ends")
        calls = fake_provider.calls
        await pilot.press("R")
        await wait_for(pilot, lambda: any("already have an answer" in message
                                          for message in notifications(app)), "nothing to do")
        await wait_for(pilot, lambda: not screen.running, "the run ends")
        assert fake_provider.calls == calls


def test_run_line_reads_without_colour() -> None:
    from coevo_tui.domain.model import PromptVersion

    version = PromptVersion(1, 3, "", None, None, "", "")
    summary = RunSummary(total=10, skipped=2, to_run=8, ok=3, errors=1, cached=1)
    line = run_line(summary, version, running=True).plain
    assert line.startswith("Run v3 ") and "4/8" in line and "1 error " in line
    assert "1 cached" in line and "2 already done" in line and "x stop" in line
    summary.halted = True
    assert "Run stopped v3" in run_line(summary, version, running=False).plain
    assert text_bar(1, 4, 8) == "██░░░░░░" and text_bar(0, 0, 4) == "░░░░"

