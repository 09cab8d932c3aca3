"""The assistant's tasks with scripted answers from the fake provider (and the fake
OpenAI-compatible server): each task's parsing, malformed and partial answers kept in
part and reported in one line, near duplicates dropped and counted per rule, candidates
stored as they stream, the judge's verdicts stored and taught by the user's labels, and
one "assist" event per task."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.assist import candidates, judge, rationale, revision, rules, similar
from coevo_tui.assist.events import (
    AssistFinished,
    AssistStarted,
    AssistText,
    CandidateAdded,
    CandidateDropped,
    ItemRejected,
    Judged,
    RulesExtracted,
    RulesText,
)
from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import (
    CaseSource,
    CaseState,
    LabelSource,
    NewRule,
    OutputStatus,
    PolicyRule,
    Verdict,
)
from coevo_tui.llm import structured
from coevo_tui.llm.client import ModelClient
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.services.judging import agreement_per_version
from coevo_tui.session import Session
from coevo_tui.store import NewCase, Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")

WAIT = 60.0  # generous: only a hang would reach it
INSTRUCTIONS = ("You moderate game chat.\n1. No slurs.\n2. No threats of real violence.\n"
                "3. Trash talk is fine.")
RULES = [NewRule(1, "No slurs"), NewRule(2, "No real threats"), NewRule(3, "Trash talk ok")]


@pytest.fixture(autouse=True)
def _forget_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structured, "_refused", {})


@pytest.fixture
async def session(store: Store, fast_client: ModelClient, fake_provider: FakeModel
                  ) -> Session:
    project = await store.settings.update(task="Moderate the chat of an online game.")
    await store.versions.create(INSTRUCTIONS, note="numbered rules")
    return Session(store, project, model=FAKE_MODEL, client=fast_client)


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    async def run() -> list[Any]:
        found = []
        async with contextlib.aclosing(events):
            async for event in events:
                found.append(event)
        return found

    return await asyncio.wait_for(run(), WAIT)


def cases_answer(*items: dict[str, Any]) -> str:
    return json.dumps({"cases": list(items)})


def item(text: str, rule: int | None = 1, reason: str = "borderline") -> dict[str, Any]:
    value: dict[str, Any] = {"input": text, "reason": reason}
    if rule is not None:
        value["rule"] = rule
    return value


async def assist_events(store: Store) -> list:
    return list(reversed(await store.events.recent(50, kind="assist")))


async def answered(store: Store, text: str, answer: str, *, verdict: Verdict | None = None,
                   rationale_text: str = "", origin: int | None = None) -> tuple[int, int]:
    """A case with an answer under the newest version (labelled if `verdict`)."""
    version = await store.versions.latest()
    case = await store.cases.add(NewCase(text, origin_case_id=origin,
                                         source=CaseSource.SIMILAR if origin else
                                         CaseSource.MANUAL))
    output = await store.outputs.add(case_id=case.id, version_id=version.id, model=FAKE_MODEL,
                                     params={}, text=answer, status=OutputStatus.OK)
    if verdict is not None:
        await store.labels.write(output.id, verdict, rationale_text)
    return case.id, output.id


# ---------------------------------------------------------------------- rules
async def test_rules_are_extracted_renumbered_and_stored_once(session: Session,
                                                              fake_provider: FakeModel) -> None:
    fake_provider.script(json.dumps({"rules": [
        {"number": 4, "title": "No slurs", "text": "No slurs."},
        {"number": 9, "title": "  No   real threats ", "text": "No threats of real violence."},
        {"number": 9, "title": "No slurs", "text": "again"},
        {"number": 5, "title": "Any message that contains:", "text": "Any message that"
         " contains:"},
        {"number": 6, "title": "Trash talk about the game is fine and so is swearing at"
         " bad luck", "text": ""},
        {"number": 2, "title": "Trash talk is fine", "text": ""}]}))
    version = await session.store.versions.latest()
    found, result = await rules.ensure_rules(session, version)
    assert [(r.number, r.title) for r in found] == [
        (1, "No slurs"), (2, "No real threats"),
        (3, "Trash talk about the game is fine and…"), (4, "Trash talk is fine")]
    assert result is not None and result.problems == (
        "rule 'No slurs' twice: kept once",
        "'Any message that contains:' is a heading, not a rule: left out",
        "rules renumbered 1 to 4")
    again, none = await rules.ensure_rules(session, version)
    assert [r.title for r in again] == [r.title for r in found] and none is None
    assert fake_provider.calls == 1  # stored: not asked again
    assert "Instructions:\n<<<\n" + INSTRUCTIONS in fake_provider.requests[0][-1]["content"]
    (event,) = await assist_events(session.store)
    assert (event.entity, event.entity_id) == ("rules", version.id)
    assert event.payload["model"] == FAKE_MODEL and event.payload["kept"] == 4
    assert event.payload["tokens_out"] > 0


@pytest.mark.parametrize(("answer", "error"), [
    ("I cannot split these.", "not JSON"),
    ('{"rules": [{"number": 1, "title": "No sl', "does not match"),
])
async def test_unusable_rules_answers_are_one_line_errors(session: Session,
                                                          fake_provider: FakeModel,
                                                          answer: str, error: str) -> None:
    fake_provider.responder = lambda messages: answer
    version = await session.store.versions.latest()
    result = await rules.extract(session, version)
    assert result.rules == [] and result.error is not None and error in result.error
    assert "\n" not in result.error
    assert fake_provider.calls == 3  # asked again twice, then given up
    (event,) = await assist_events(session.store)
    assert event.payload["error"] == result.error and event.payload["errors"] == 1


async def test_a_cut_off_rules_answer_keeps_its_complete_rules(session: Session,
                                                               fake_provider: FakeModel) -> None:
    whole = json.dumps({"rules": [{"number": 1, "title": "No slurs", "text": "a"},
                                  {"number": 2, "title": "No threats", "text": "b"}]})
    fake_provider.script(whole[:whole.index('"No threats"') + 5])
    result = await rules.extract(session, await session.store.versions.latest())
    assert [r.title for r in result.rules] == ["No slurs"]
    assert any("cut off" in p for p in result.problems)


# ---------------------------------------------------------------------- candidates
def test_the_plan_spreads_inputs_favouring_rules_with_few_cases() -> None:
    rules_ = [PolicyRule(i, 1, i, f"rule {i}") for i in (1, 2, 3)]
    assert candidates.plan(rules_, {1: 5, 2: 0, 3: 1}, 4) == {2: 3, 3: 1}
    assert candidates.plan(rules_, {}, 6) == {1: 2, 2: 2, 3: 2}
    assert candidates.plan(rules_, {1: 0}, 3, rule=1) == {1: 3}
    assert candidates.plan([], {}, 3) == {}


async def test_candidates_are_stored_as_they_come_and_near_duplicates_dropped_per_rule(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    version = await store.versions.latest()
    await store.rules.replace(version.id, RULES)
    await answered(store, "gg ez uninstall", "ALLOW", verdict=Verdict.GOOD)
    await answered(store, "i know where u live", "ALLOW", verdict=Verdict.BAD,
                   rationale_text="a real-world threat")
    (rejected,) = await store.cases.add_candidates([NewCase(
        "ur mom is a bot", source=CaseSource.GENERATED, rule_number=3)])
    await store.cases.reject([rejected.id])
    fake_provider.script(cases_answer(
        item("see you irl, I have your address", 2, "doxxing threat or banter?"),
        item("GG EZ, uninstall!", 3),            # an existing case
        item("UR MOM IS A BOT", 3),              # a rejected input
        item("Quoting it: he said the n-word", 1),
        item("quoting it -- he said the N-word!", 1),   # an earlier item
        item("  ", 1),                           # empty
        item("no such rule", 7)))                # not one of the rules
    events = await collect(candidates.generate(session, n=7))
    assert isinstance(events[0], AssistStarted) and events[0].total == 7
    added = [e.case for e in events if isinstance(e, CandidateAdded)]
    dropped = [e for e in events if isinstance(e, CandidateDropped)]
    rejected_items = [e for e in events if isinstance(e, ItemRejected)]
    assert [(c.input, c.rule_number, c.reason) for c in added] == [
        ("see you irl, I have your address", 2, "doxxing threat or banter?"),
        ("Quoting it: he said the n-word", 1, "borderline")]
    assert all((c.state, c.source, c.origin_version_id) == (
        CaseState.CANDIDATE, CaseSource.GENERATED, version.id) for c in added)
    assert [(d.text, d.duplicate_of, d.rule_number) for d in dropped] == [
        ("GG EZ, uninstall!", "gg ez uninstall", 3),
        ("UR MOM IS A BOT", "ur mom is a bot", 3),
        ("quoting it -- he said the N-word!", "Quoting it: he said the n-word", 1)]
    assert [e.problem for e in rejected_items] == [
        "item #6: an empty input: dropped", "cases #7.rule: '7' is not one of 1, 2, 3: dropped"]
    assert any(isinstance(e, AssistText) for e in events)
    summary = events[-1].summary
    assert isinstance(events[-1], AssistFinished)
    assert (summary.generated, summary.kept, summary.dropped, summary.unusable) == (5, 2, 3, 2)
    assert summary.by_rule == {1: (1, 1), 2: (1, 0), 3: (0, 2)}
    assert summary.line().startswith(
        "5 cases under v2: 2 kept, 3 dropped as near duplicates (rule 1: 1 kept, 1 dropped;"
        " rule 2: 1 kept; rule 3: 2 dropped); 2 unusable; $0.0000;")
    assert [c.id for c in await store.cases.candidates()] == [c.id for c in added]
    (event,) = await assist_events(store)
    assert (event.entity, event.entity_id) == ("candidates", version.id)
    assert (event.payload["kept"], event.payload["dropped"], event.payload["halted"]) == (
        2, 3, False)
    assert event.payload["by_rule"] == {"1": [1, 1], "2": [1, 0], "3": [0, 2]}


async def test_the_candidates_prompt_shows_the_rules_the_plan_and_failures_first(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    version = await store.versions.latest()
    await store.rules.replace(version.id, RULES)
    await answered(store, "gg ez", "ALLOW", verdict=Verdict.GOOD)
    await answered(store, "kys", "ALLOW", verdict=Verdict.BAD, rationale_text="self-harm")
    await store.cases.add(NewCase("not labelled yet", rule_number=1))
    await store.cases.add(NewCase("also not labelled", rule_number=1))
    fake_provider.script(cases_answer(item("x", 1)))
    await collect(candidates.generate(session, n=3))
    system, user = fake_provider.requests[0][0]["content"], fake_provider.requests[0][1][
        "content"]
    assert "register" in system and "language" in system and "indirection" in system
    assert "Example item" in system
    assert "1. No slurs\n2. No real threats\n3. Trash talk ok" in user
    # Rule 1 has two cases already: the three inputs go to rules 2 and 3.
    assert "- rule 2 (No real threats): 2 inputs\n- rule 3 (Trash talk ok): 1 input" in user
    assert user.index('"kys"') < user.index('"gg ez"') < user.index('"not labelled yet"')
    assert "Why: self-harm" in user
    schema = fake_provider.response_formats[0]["json_schema"]["schema"]
    assert schema["properties"]["cases"]["items"]["properties"]["rule"]["enum"] == [1, 2, 3]
    assert schema["properties"]["cases"]["maxItems"] == 3


async def test_rules_are_extracted_first_when_the_version_has_none(
        session: Session, fake_provider: FakeModel) -> None:
    fake_provider.script(json.dumps({"rules": [{"number": 1, "title": "No slurs", "text": ""},
                                               {"number": 2, "title": "No threats",
                                                "text": ""}]}),
                         cases_answer(item("a", 2), item("b", 2)))
    events = await collect(candidates.generate(session, n=2, rule=2))
    (extracted,) = [e for e in events if isinstance(e, RulesExtracted)]
    assert [r.title for r in extracted.rules] == ["No slurs", "No threats"]
    assert [e.case.rule_number for e in events if isinstance(e, CandidateAdded)] == [2, 2]
    assert [e.entity for e in await assist_events(session.store)] == ["rules", "candidates"]


async def test_the_rules_answer_shows_as_it_streams_and_a_stop_cancels_it(
        session: Session, fake_provider: FakeModel) -> None:
    # A slow model spends minutes on the rules before the batch: its words are shown as
    # they come, and a stop then ends the model's stream and stores no half list.
    store = session.store
    rules_answer = json.dumps({"rules": [{"number": 1, "title": "No slurs", "text": ""}]})
    fake_provider.script([rules_answer[:10], rules_answer[10:20], rules_answer[20:]])
    fake_provider.hold(after_chunks=2)
    events = candidates.generate(session, n=2)
    written = ""
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                assert not isinstance(event, (RulesExtracted, CandidateAdded))
                if isinstance(event, RulesText):
                    written += event.text
                    if written == rules_answer[:20]:
                        break
    finally:
        fake_provider.release()
    assert written == rules_answer[:20]
    assert fake_provider.streams_cancelled == 1
    assert await store.rules.for_version((await store.versions.latest()).id) == []
    # Asked again, the same streamed answer is taken whole.
    fake_provider.script(rules_answer, cases_answer(item("a", 1)))
    events_again = await collect(candidates.generate(session, n=1))
    assert "".join(e.text for e in events_again if isinstance(e, RulesText)) == rules_answer
    (extracted,) = [e for e in events_again if isinstance(e, RulesExtracted)]
    assert [r.title for r in extracted.rules] == ["No slurs"]


async def test_an_unknown_rule_or_count_is_refused_before_the_model_is_asked(
        session: Session, fake_provider: FakeModel) -> None:
    version = await session.store.versions.latest()
    await session.store.rules.replace(version.id, RULES)
    with pytest.raises(UserError, match="no rule 9 .rules 1 to 3."):
        await collect(candidates.generate(session, n=2, rule=9))
    with pytest.raises(UserError, match="between 1 and 50"):
        await collect(candidates.generate(session, n=0))
    assert fake_provider.calls == 0 and await session.store.cases.candidates() == []


async def test_a_malformed_candidates_answer_is_one_line_and_stores_nothing(
        session: Session, fake_provider: FakeModel) -> None:
    fake_provider.responder = lambda messages: "Here are some ideas: be creative!"
    version = await session.store.versions.latest()
    await session.store.rules.replace(version.id, RULES)
    events = await collect(candidates.generate(session, n=3))
    summary = events[-1].summary
    assert summary.kept == 0 and summary.errors == 1 and summary.error is not None
    assert "\n" not in summary.line() and summary.error in summary.line()
    assert await session.store.cases.candidates() == []


async def test_a_cut_off_batch_keeps_its_complete_items(session: Session,
                                                        fake_provider: FakeModel) -> None:
    version = await session.store.versions.latest()
    await session.store.rules.replace(version.id, RULES)
    whole = cases_answer(item("first one", 1), item("second one", 2), item("third", 3))
    fake_provider.script(whole[:whole.index('"third"') + 3])
    events = await collect(candidates.generate(session, n=3))
    assert [e.case.input for e in events if isinstance(e, CandidateAdded)] == [
        "first one", "second one"]
    assert any("cut off" in p for p in events[-1].summary.problems)


async def test_the_first_candidate_is_stored_while_the_model_still_writes_and_a_stop_keeps_it(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    version = await store.versions.latest()
    await store.rules.replace(version.id, RULES)
    first = json.dumps(item("held back one", 1))
    fake_provider.script(['{"cases": [', first, ", ", json.dumps(item("never sent", 2)),
                          "]}"])
    fake_provider.hold(after_chunks=2)
    events = candidates.generate(session, n=2)
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, CandidateAdded):
                    break
            # The model has not sent the rest, and the candidate is in the queue already.
            assert fake_provider.streams_finished == 0
            assert [c.input for c in await store.cases.candidates()] == ["held back one"]
    finally:
        fake_provider.release()
    assert fake_provider.streams_cancelled == 1  # closing stopped the model's stream
    assert [c.input for c in await store.cases.candidates()] == ["held back one"]
    (event,) = await assist_events(store)
    assert event.payload["halted"] is True and event.payload["kept"] == 1


async def test_candidates_stream_from_an_openai_compatible_server(
        store: Store, fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    project = await store.settings.update(task="Moderate chat.")
    version = await store.versions.create(INSTRUCTIONS, note="v2")
    await store.rules.replace(version.id, RULES)
    answer = cases_answer(item("one from the server", 1), item("two from the server", 3))
    fake_server.responder = lambda body: [answer[:30], answer[30:70], answer[70:]]
    session = Session(store, project, model="served", api_base=fake_server.url,
                      client=fast_client)
    events = await collect(candidates.generate(session, n=2))
    assert [e.case.input for e in events if isinstance(e, CandidateAdded)] == [
        "one from the server", "two from the server"]
    request = fake_server.requests[0]
    assert request["stream"] is True and request["response_format"]["type"] == "json_schema"
    assert request["model"] == "served"


# ---------------------------------------------------------------------- similar
async def test_similar_cases_keep_the_origin_and_its_rule_and_drop_repeats(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    version = await store.versions.latest()
    (origin,) = await store.cases.add_candidates([NewCase(
        "he said the n-word, ban him", source=CaseSource.GENERATED, rule_number=1,
        origin_version_id=version.id)])
    (origin,) = await store.cases.accept([origin.id])
    output = await store.outputs.add(case_id=origin.id, version_id=version.id,
                                     model=FAKE_MODEL, params={}, text="REMOVE - slur",
                                     status=OutputStatus.OK)
    await store.labels.write(output.id, Verdict.BAD, "reporting a slur is not using it")
    fake_provider.script(cases_answer(
        item("my teammate typed a slur at me, can you ban him", None, "a report, reworded"),
        item("He said the N-word, ban him!", None, "same"),
        item("mi compañero me insultó con un insulto racial, ¿lo baneas?", None, "Spanish")))
    events = await collect(similar.generate(session, origin.id, n=3))
    added = [e.case for e in events if isinstance(e, CandidateAdded)]
    assert [(c.source, c.origin_case_id, c.rule_number) for c in added] == [
        (CaseSource.SIMILAR, origin.id, 1)] * 2
    (dropped,) = [e for e in events if isinstance(e, CandidateDropped)]
    assert dropped.duplicate_of == origin.input
    user = fake_provider.requests[0][-1]["content"]
    assert json.dumps(origin.input) in user and "REMOVE - slur" in user
    assert "labelled that answer bad. Their reason: reporting a slur is not using it" in user
    assert events[-1].summary.line().startswith(f"3 similar cases of {origin.ext_id}: 2 kept")
    (event,) = await assist_events(store)
    assert (event.entity, event.entity_id) == ("similar", origin.id)
    with pytest.raises(NotFound):
        await collect(similar.generate(session, 999, n=2))


# ---------------------------------------------------------------------- rationale
async def test_a_suggested_rationale_is_returned_not_stored(session: Session,
                                                            fake_provider: FakeModel) -> None:
    store = session.store
    await answered(store, "gg ez", "WARN", verdict=Verdict.BAD,
                   rationale_text="Trash talk about the game stays.")
    _, output_id = await answered(store, "I'll find you after school", "ALLOW")
    fake_provider.script('```json\n{"rationale": "A threat tied to a real place is not'
                         ' game talk;\\n it must be removed."}\n```')
    result = await rationale.suggest(session, output_id, "bad")
    assert result.error is None
    assert result.text == "A threat tied to a real place is not game talk; it must be removed."
    assert await store.labels.current(output_id) is None
    user = fake_provider.requests[0][-1]["content"]
    assert "labelled this answer bad" in user and "Trash talk about the game stays." in user
    fake_provider.responder = lambda messages: '{"reason": "no rationale key"}'
    failed = await rationale.suggest(session, output_id, Verdict.UNSURE)
    assert failed.text == "" and "'rationale' is missing" in (failed.error or "")
    assert [e.entity for e in await assist_events(store)] == ["rationale", "rationale"]


# ---------------------------------------------------------------------- revision
async def test_a_revision_draft_cites_its_cases_and_saves_them_as_motivation(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    good_id, _ = await answered(store, "gg ez", "ALLOW", verdict=Verdict.GOOD)
    bad_id, bad_output = await answered(store, "he said a slur, report", "REMOVE",
                                        verdict=Verdict.BAD, rationale_text="reporting is ok")
    unsure_id, _ = await answered(store, "kys (the song)", "REMOVE", verdict=Verdict.UNSURE,
                                  rationale_text="a song title?")
    bad, unsure = await store.cases.get(bad_id), await store.cases.get(unsure_id)
    fake_provider.script(json.dumps({
        "instructions": INSTRUCTIONS + "\n4. Reporting a slur is allowed.",
        "summary": f"Reports of slurs are allowed ({bad.ext_id}); song titles ({unsure.ext_id}).",
        "case_ids": [bad.ext_id, "c999"]}))
    draft = await revision.draft(session)
    assert draft.error is None and draft.instructions.endswith("4. Reporting a slur is allowed.")
    assert draft.case_ids == [bad_id, unsure_id]  # the summary's ids count too
    label = await store.labels.current(bad_output)
    assert draft.label_ids[0] == label.id
    assert draft.problems == (f"case_ids #2: 'c999' is not one of {unsure.ext_id},"
                              f" {bad.ext_id}: dropped",)
    ids = fake_provider.response_formats[0]["json_schema"]["schema"]["properties"][
        "case_ids"]["items"]
    assert ids["enum"] == [unsure.ext_id, bad.ext_id]  # constrained to the cases shown
    user = fake_provider.requests[0][-1]["content"]
    assert f"- {unsure.ext_id} [unsure]" in user and "the user's reason: reporting is ok" in user
    assert "gg ez" not in user  # good cases are not failures
    saved = await store.versions.create(draft.instructions, note=draft.summary,
                                        motivating=draft.motivating)
    assert [case for case, _ in await store.versions.motivating_cases(saved.id)] == sorted(
        [bad_id, unsure_id])
    assert good_id not in draft.case_ids


async def test_no_revision_without_failing_cases_and_no_call(session: Session,
                                                             fake_provider: FakeModel) -> None:
    draft = await revision.draft(session)
    assert draft.error is not None and "no bad or unsure" in draft.error
    assert fake_provider.calls == 0


# ---------------------------------------------------------------------- judge
def _judge_by_input(messages: list[dict[str, Any]]) -> str:
    user = messages[1]["content"]  # the question (asked again, more messages follow it)
    if "malformed" in user:
        return "I would rather not say."
    verdict = "bad" if "threat" in user else "good"
    return json.dumps({"verdict": verdict, "reason": f"judged {verdict}\nsecond line"})


async def test_the_judge_stores_suggestions_learns_from_labels_and_is_measured(
        session: Session, fake_provider: FakeModel) -> None:
    store = session.store
    version = await store.versions.latest()
    _, corrected = await answered(store, "gg go next", "WARN")
    early = await store.judgements.add(corrected, Verdict.BAD, "rude", "old-judge")
    await store.labels.write(corrected, Verdict.GOOD, "banter is fine")  # a correction
    origin_id, _ = await answered(store, "a threat to the server", "ALLOW",
                                  verdict=Verdict.BAD, rationale_text="threats go")
    _, threat = await answered(store, "a threat again", "ALLOW", origin=origin_id)
    _, fine = await answered(store, "nice shot", "ALLOW")
    _, broken = await answered(store, "malformed please", "ALLOW")
    fake_provider.responder = _judge_by_input
    events = await collect(judge.judge(session, version))
    assert events[0].total == 3
    judged = {e.output_id: e.judgement for e in events if isinstance(e, Judged)}
    assert {k: (j.verdict, j.reason, j.model) for k, j in judged.items()} == {
        threat: (Verdict.BAD, "judged bad", FAKE_MODEL),
        fine: (Verdict.GOOD, "judged good", FAKE_MODEL)}
    (failed,) = [e for e in events if isinstance(e, ItemRejected)]
    assert failed.output_id == broken and "\n" not in failed.problem
    summary = events[-1].summary
    assert (summary.done, summary.errors, summary.total) == (2, 1, 3)
    assert summary.line().startswith("judged 2 of 3 answers under v2, 1 failed")
    # The user's correction comes first in the shared prompt; the case's origin's label
    # is in the prompt of the variant.
    request = next(r for r in fake_provider.requests if "a threat again" in r[-1]["content"])
    system = request[0]["content"]
    assert system.index("corrected the judge") < system.index("How the user labelled")
    assert '"gg go next"' in system and "judge had said bad" in system
    assert "Earlier labels of this case or similar ones" in request[-1]["content"]
    assert '"a threat to the server"' in request[-1]["content"]
    # Judged answers are not judged again; accepting one labels it (source judge),
    # labelling directly overrides another.
    assert [o.id for o in await store.judgements.unlabelled_outputs(version.id)] == [broken]
    label = await store.judgements.accept(judged[threat].id)
    assert (label.verdict, label.source) == (Verdict.BAD, LabelSource.JUDGE)
    await store.labels.write(fine, Verdict.BAD, "sarcasm")
    per_version = await agreement_per_version(store)
    agree = per_version[version.id]
    assert (agree.n, agree.agreed) == (3, 1)  # the accepted one agrees; two corrections
    assert agree.confusion[(Verdict.GOOD, Verdict.BAD)] == 1  # corrected: early judgement
    assert agree.confusion[(Verdict.BAD, Verdict.GOOD)] == 1  # overridden: fine
    assert early.id not in [j.id for j in judged.values()]
    (event,) = [e for e in await assist_events(store) if e.entity == "judge"]
    assert (event.payload["done"], event.payload["errors"]) == (2, 1)


async def test_the_judge_through_an_openai_compatible_server_at_concurrency(
        store: Store, fake_server: FakeModelServer) -> None:
    project = await store.settings.update(task="Moderate chat.")
    version = await store.versions.create(INSTRUCTIONS, note="v2")
    outputs = []
    for i in range(12):
        case = await store.cases.add(NewCase(f"message {i}"))
        outputs.append((await store.outputs.add(
            case_id=case.id, version_id=version.id, model="openai/m", params={},
            text=f"ALLOW {i}", status=OutputStatus.OK)).id)
    fake_server.responder = lambda body: json.dumps({"verdict": "good", "reason": "fine"})
    client = ModelClient(concurrency=4, timeout=30)
    session = Session(store, project, model="m", api_base=fake_server.url, client=client)
    events = await collect(judge.judge(session, version, model="openai/m"))
    assert sorted(e.output_id for e in events if isinstance(e, Judged)) == outputs
    assert fake_server.request_count == 12
    assert all(r["stream"] is False for r in fake_server.requests if "stream" in r)
    assert fake_server.requests[0]["response_format"]["json_schema"]["schema"][
        "properties"]["verdict"]["enum"] == ["good", "bad", "unsure"]
    nothing = await collect(judge.judge(session, version, model="openai/m"))
    assert nothing[0].total == 0 and fake_server.request_count == 12


# ---------------------------------------------------------------------- embeddings
async def test_with_an_embedding_model_paraphrases_are_dropped_too(
        session: Session, fake_provider: FakeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    store = session.store
    version = await store.versions.latest()
    await store.rules.replace(version.id, RULES)
    await store.cases.add(NewCase("I will find where you live"))
    monkeypatch.setenv("COEVO_EMBEDDING_MODEL", "coevo-fake/embedder")
    monkeypatch.setenv("COEVO_EMBEDDING_THRESHOLD", "0.9")
    fake_provider.embeddings.update({
        "I will find where you live": [1.0, 0.0, 0.0],
        "gonna track down your home address": [0.98, 0.1, 0.0],  # a paraphrase
        "nice flank, totally legit": [0.0, 1.0, 0.0]})
    fake_provider.script(cases_answer(item("gonna track down your home address", 2),
                                      item("nice flank, totally legit", 3)))
    events = await collect(candidates.generate(session, n=2))
    (dropped,) = [e for e in events if isinstance(e, CandidateDropped)]
    assert (dropped.text, dropped.duplicate_of) == ("gonna track down your home address",
                                                    "I will find where you live")
    assert [e.case.input for e in events if isinstance(e, CandidateAdded)] == [
        "nice flank, totally legit"]
    assert fake_provider.embedding_requests[0] == [candidates.EXAMPLE["input"],
                                                   "I will find where you live"]
    monkeypatch.setenv("COEVO_EMBEDDING_THRESHOLD", "two")
    with pytest.raises(UserError, match="COEVO_EMBEDDING_THRESHOLD"):
        await collect(candidates.generate(session, n=2))


async def test_a_failing_embedding_model_falls_back_to_text_and_says_so(
        session: Session, fake_provider: FakeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    version = await session.store.versions.latest()
    await session.store.rules.replace(version.id, RULES)
    await session.store.cases.add(NewCase("an existing case"))
    monkeypatch.setenv("COEVO_EMBEDDING_MODEL", "no-such-provider/embedder")
    fake_provider.script(cases_answer(item("brand new input", 1)))
    events = await collect(candidates.generate(session, n=1))
    assert [e.case.input for e in events if isinstance(e, CandidateAdded)] == [
        "brand new input"]
    (problem,) = [p for p in events[-1].summary.problems if "embeddings" in p]
    assert problem.startswith("embeddings from no-such-provider/embedder failed (")
    assert problem.endswith("; compared by text only") and "\n" not in problem


# ---------------------------------------------------------------------- copied examples
async def test_answers_that_copy_the_prompts_example_are_not_taken(
        session: Session, fake_provider: FakeModel) -> None:
    """Small models repeat the worked example: a copied rationale or rule list is an
    error, and a copied example input is dropped like a near duplicate."""
    store = session.store
    version = await store.versions.latest()
    fake_provider.script(json.dumps({"rules": [
        {"number": 1, "title": "Be polite", "text": "Be polite."},
        {"number": 2, "title": "No refund promises", "text": "..."}]}))
    extracted = await rules.extract(session, version)
    assert extracted.rules == [] and "repeated the prompt's example" in (extracted.error or "")
    await store.rules.replace(version.id, RULES)
    fake_provider.script(cases_answer(item(candidates.EXAMPLE["input"], 2), item("fresh", 1)))
    events = await collect(candidates.generate(session, n=2))
    (copied,) = [e for e in events if isinstance(e, CandidateDropped)]
    assert copied.duplicate_of == candidates.EXAMPLE["input"]
    _, output_id = await answered(store, "he said a slur, ban him", "REMOVE")
    fake_provider.script(json.dumps(rationale.EXAMPLE))
    result = await rationale.suggest(session, output_id, "bad")
    assert result.text == "" and "repeated the prompt's example" in (result.error or "")
