"""The Overview screen and its pass-rate chart: per-version counts, statuses against the
parent, cost and latency, provenance, the model counted, and opening Compare."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from coevo_tui.domain.model import (
    Label,
    LabelSource,
    Output,
    OutputStatus,
    PromptVersion,
    Verdict,
)
from coevo_tui.domain.status import Answer, ComparisonStatus, answer_facts
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.services.overview import (
    pick_model,
    version_rows_from_facts,
)
from coevo_tui.store import Store
from coevo_tui.widgets.pass_rate_chart import PassRateBar, bar_cells, chart_lines

from comparison_project import MODEL, build
from pilot_support import open_screen, screen_text, settle, wait_for, wait_for_screen

S = ComparisonStatus


@pytest.fixture
async def stored(project_path: Path) -> Path:
    await build(project_path)
    return project_path


# ---------------------------------------------------------------------- the chart
def eighths(line: str) -> int:
    """How many eighths of a cell a chart line's bar fills."""
    partial = " ▏▎▍▌▋▊▉"
    return sum(8 if c == "█" else partial.index(c) for c in line if c == "█" or c in partial[1:])


def test_bar_cells_fill_the_rate_to_an_eighth() -> None:
    assert bar_cells(0.5, 10) == "█████░░░░░"
    assert bar_cells(0.0, 4) == "░░░░"
    assert bar_cells(1.0, 4) == "████"
    assert bar_cells(0.0625, 4) == "▎░░░"  # a quarter cell: 2 eighths
    assert all(len(bar_cells(r / 100, 17)) == 17 for r in range(101))


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_chart_lines_fit_the_width_and_read_without_colour(width: int) -> None:
    bars = [PassRateBar("v1", 3, 4), PassRateBar("v10", 1, 4), PassRateBar("v11", 0, 0)]
    lines = chart_lines(bars, width)
    assert all(cell_len(line.plain) <= width for line in lines)
    first, second, third = (line.plain for line in lines)
    assert first.startswith("v1  ") and "75%" in first and "3/4" in first
    assert "25%" in second and "1/4" in second
    # The length of the filled part says the rate, with no colour at all.
    assert abs(eighths(first) - 3 * eighths(second)) <= 3  # each rounded to an eighth
    assert eighths(first) == round(0.75 * 8 * len(first.split()[1]))
    assert "n/a" in third and "nothing labelled" in third and "█" not in third


def test_pick_model_prefers_the_configured_one_when_it_has_answers() -> None:
    assert pick_model("a", {"a": 1, "b": 5}) == "a"
    assert pick_model("c", {"a": 1, "b": 5}) == "b"
    assert pick_model(None, {"a": 5, "b": 5}) == "a"
    assert pick_model("c", {}) == "c"
    assert pick_model(None, {}) is None


# ---------------------------------------------------------------------- the screen
def test_version_rows_count_every_case_once_against_the_parent() -> None:
    # The screen counts plain facts (100,000 answers as objects cost seconds).
    versions = [PromptVersion(id=10 + i, number=i, instructions=f"v{i}", user_template=None,
                              parent_id=None if i == 1 else 9 + i, note="", created_at="")
                for i in range(1, 4)]
    texts = ["yes", "no", " yes ", "maybe"]
    answers: dict[int, dict[int, Answer]] = {}
    number = 0
    for version in versions:
        answers[version.id] = {}
        for case_id in range(1, 9):
            number += 1
            if (case_id + version.number) % 7 == 0:
                continue  # not run
            status = (OutputStatus.ERROR if number % 11 == 0 else
                      OutputStatus.CANCELLED if number % 13 == 0 else OutputStatus.OK)
            out = Output(id=number, case_id=case_id, version_id=version.id, model="m",
                         params={}, text=texts[number % 4], status=status,
                         cost=0.01 * (number % 3), latency_ms=float(number))
            verdict = (None, Verdict.GOOD, Verdict.BAD, Verdict.UNSURE)[number % 4]
            lab = None if verdict is None else Label(
                id=number, output_id=number, verdict=verdict, rationale="",
                source=LabelSource.CARRIED if number % 5 == 0 else LabelSource.HUMAN)
            answers[version.id][case_id] = Answer(out, lab)
    facts = {vid: {cid: answer_facts(a) for cid, a in per.items()}
             for vid, per in answers.items()}
    case_ids = list(range(1, 10))
    rows = version_rows_from_facts(versions, case_ids, facts)
    assert [(r.version.number, r.parent_number) for r in rows] == [(1, None), (2, 1), (3, 2)]
    for row in rows:
        summary = row.summary
        # every case is counted once: answered (good, bad, unsure, unlabelled), an error,
        # or missing (not run, or cancelled)
        assert summary.cases == 9
        assert (summary.good + summary.bad + summary.unsure + summary.unlabelled
                + summary.errors + summary.missing) == 9
        assert summary.carried <= summary.labelled
    assert rows[0].summary.statuses == {}  # no parent to compare with
    assert all(sum(r.summary.statuses.values()) == 9 for r in rows[1:])
    # v1 counted by hand from its answers.
    v1 = [a for a in answers[versions[0].id].values()]
    assert rows[0].summary.missing == 9 - len(v1) + sum(
        a.output.status == OutputStatus.CANCELLED for a in v1)
    assert rows[0].summary.errors == sum(a.output.status == OutputStatus.ERROR for a in v1)


async def test_overview_counts_each_version_against_its_parent(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        v1, v2, v3 = screen.rows
        assert (v1.summary.good, v1.summary.labelled, v1.summary.missing) == (6, 9, 1)
        assert v1.parent_number is None and v1.summary.statuses == {}
        assert v2.summary.statuses == {S.STILL_GOOD: 6, S.STILL_BAD: 3, S.MISSING: 1}
        assert (v3.summary.good, v3.summary.bad, v3.summary.unsure) == (3, 2, 1)
        assert v3.summary.errors == 1 and v3.summary.unlabelled == 2
        assert v3.summary.statuses[S.REGRESSED] == 1 and v3.summary.statuses[S.FIXED] == 1
        text = screen_text(app)
        assert f"10 active cases · model {MODEL}" in text
        chart = [line for line in text.splitlines() if "█" in line]
        assert len(chart) == 3
        assert "67%" in chart[0] and "6/9" in chart[0]
        assert "50%" in chart[2] and "3/6" in chart[2]
        # the table row of v3: pass, good, bad, unsure, unlabelled, errors, todo, fixed,
        # regressed, changed, cost, latency
        row = next(line for line in text.splitlines() if line.strip().startswith("v3    "))
        assert row.split() == ["v3", "50%", "3", "2", "1", "2", "1", "1", "1", "1", "1",
                               "$0.0040", "741", "ms"]
        # The version under the cursor (the newest): its statuses and provenance.
        assert "v3 against v2: ▼ regressed 1 · ? changed, unlabelled 1 · ▲ fixed 1" in (
            text)
        await pilot.press("end")
        await pilot.pause()
        text = screen_text(app)
        assert "v3 note: flag doxxing" in text
        assert "c1 [G] Mocking play skill is allowed trash talk." in text
        assert "c7 [B] 'kys' tells someone to kill themselves: never allowed." in text


async def test_moving_to_a_version_shows_its_provenance_and_enter_compares(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        await pilot.press("up")
        await pilot.pause()
        text = screen_text(app)
        assert "v2 note: narrow removals to identity attacks" in text
        assert "c2 [B] Sharing a home address is doxxing, even without a slur." in text
        assert "c3 [B] Telling someone to go back to their country attacks origin." in text
        await pilot.press("up")
        await pilot.pause()
        assert "v1 is the first version" in screen_text(app)
        assert screen.check_action("compare", ()) is None  # no parent to compare with
        await pilot.press("down", "enter")
        compare = await wait_for_screen(app, pilot, CompareScreen)
        await settle(app, pilot)
        await wait_for(pilot, lambda: compare.list_ready, "compare loaded")
        assert compare.left.version.number == 1 and compare.right.version.number == 2


async def test_m_counts_another_models_answers(stored: Path, make_test_app) -> None:
    store = await Store.open(stored)
    try:
        case = await store.cases.by_ext_id("c1")
        v3 = await store.versions.by_number(3)
        out = await store.outputs.add(case_id=case.id, version_id=v3.id, model="other/model",
                                     params={}, text="x", status=OutputStatus.OK)
        await store.labels.write(out.id, Verdict.GOOD)
    finally:
        await store.close()
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        assert screen.model == MODEL
        assert "(m: 2 models)" in screen_text(app)
        await pilot.press("m")
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.model == "other/model", "the other model")
        v1, v2, v3 = screen.rows
        assert v3.summary.good == 1 and v3.summary.missing == 9
        assert v1.summary.missing == 10
        await pilot.pause()
        assert "model other/model" in screen_text(app)


async def test_an_empty_project_says_so(make_test_app) -> None:
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        text = screen_text(app)
        assert "0 active cases · " in text and "no answers yet" in text
        assert "n/a" in text and "nothing labelled" in text
        assert len(screen.rows) == 1


async def test_the_prompt_screen_version_view_shows_what_motivated_it(
        stored: Path, make_test_app) -> None:
    from coevo_tui.screens.prompt import PromptScreen

    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        assert isinstance(screen, PromptScreen)
        assert screen.versions
        screen.version_list.highlighted = 0  # newest first: v3
        screen.action_view()
        await settle(app, pilot)  # the provenance read
        view = str(screen.query_one("#prompt-view-text").render())
        assert "Version 3" in view
        assert "Motivated by:" in view
        assert "c7 [B] 'kys' tells someone to kill themselves: never allowed." in view
        screen.version_list.highlighted = 2  # v1: nothing motivated it
        screen.action_view()
        await settle(app, pilot)  # the provenance read
        view = str(screen.query_one("#prompt-view-text").render())
        assert "Version 1" in view and "Motivated by: no cases recorded" in view
