"""Comparison statuses between two versions' answers on one case, pass rates and summaries.

Everything here is pure: it takes outputs and labels already read from the store.

The comparison table (B = baseline answer, R = revision answer; "verdict" is the output's
current label, whatever its source; a cancelled output counts as no output; an error
output has no usable text, so it never "equals" anything):

======================  ==========================================  =======================
revision R              baseline B                                  status
======================  ==========================================  =======================
none (or cancelled)     anything                                    MISSING
error                   anything                                    ERROR
ok                      none (or cancelled)                         NEW
ok, verdict v2          ok or error, verdict v1                     the v1 -> v2 transition
ok                      ok, same normalized text, <=1 side labelled UNCHANGED
ok, unlabelled          ok (different text) or error                CHANGED_UNLABELLED
ok, labelled            ok (different text) or error, unlabelled    NO_BASELINE_VERDICT
======================  ==========================================  =======================

The v1 -> v2 transitions, when both sides carry a verdict (labels decide, even when the
texts are identical, because a human deliberately judged them differently):

=========  =========  ===============
v1         v2         status
=========  =========  ===============
good       good       STILL_GOOD
good       bad        REGRESSED
good       unsure     GOOD_TO_UNSURE
bad        good       FIXED
bad        bad        STILL_BAD
bad        unsure     BAD_TO_UNSURE
unsure     good       UNSURE_TO_GOOD
unsure     bad        UNSURE_TO_BAD
unsure     unsure     STILL_UNSURE
=========  =========  ===============

Only REGRESSED (good to bad) counts as a regression for `coevo eval --check`; good to
unsure is shown second in navigation so that it is not missed, but it is not a failure.

Pass rate is good / labelled, where labelled = good + bad + unsure: an unsure verdict is a
label that is not (yet) good, so it lowers the pass rate. Errors and unlabelled outputs are
outside the ratio and reported as separate counts.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from coevo_tui.domain.model import (
    Label,
    LabelSource,
    Output,
    OutputStatus,
    PromptVersion,
    Verdict,
    normalize_output_text,
)


class Answer(NamedTuple):
    """One output with its current label (None when unlabelled)."""

    output: Output
    label: Label | None

    @property
    def verdict(self) -> Verdict | None:
        return None if self.label is None else self.label.verdict


class ComparisonStatus(str, enum.Enum):
    """How a case's answer changed from the baseline version to the revision.

    Members are declared in navigation order: regressions first, then changed-unlabelled,
    then fixed, then the rest (most worth a look first).
    """

    REGRESSED = "regressed"
    CHANGED_UNLABELLED = "changed_unlabelled"
    FIXED = "fixed"
    ERROR = "error"
    GOOD_TO_UNSURE = "good_to_unsure"
    UNSURE_TO_BAD = "unsure_to_bad"
    BAD_TO_UNSURE = "bad_to_unsure"
    UNSURE_TO_GOOD = "unsure_to_good"
    NEW = "new"
    NO_BASELINE_VERDICT = "no_baseline_verdict"
    STILL_UNSURE = "still_unsure"
    STILL_BAD = "still_bad"
    MISSING = "missing"
    UNCHANGED = "unchanged"
    STILL_GOOD = "still_good"

    @property
    def text(self) -> str:
        """Short words for a badge or a table cell (no colour needed to read it)."""
        return _STATUS_TEXT[self]

    @property
    def rank(self) -> int:
        """Position in navigation order (0 = look at first)."""
        return _STATUS_RANK[self]


_STATUS_TEXT: dict[ComparisonStatus, str] = {
    ComparisonStatus.REGRESSED: "regressed",
    ComparisonStatus.CHANGED_UNLABELLED: "changed, unlabelled",
    ComparisonStatus.FIXED: "fixed",
    ComparisonStatus.ERROR: "error",
    ComparisonStatus.GOOD_TO_UNSURE: "good→unsure",
    ComparisonStatus.UNSURE_TO_BAD: "unsure→bad",
    ComparisonStatus.BAD_TO_UNSURE: "bad→unsure",
    ComparisonStatus.UNSURE_TO_GOOD: "unsure→good",
    ComparisonStatus.NEW: "new",
    ComparisonStatus.NO_BASELINE_VERDICT: "no baseline verdict",
    ComparisonStatus.STILL_UNSURE: "still unsure",
    ComparisonStatus.STILL_BAD: "still bad",
    ComparisonStatus.MISSING: "not run",
    ComparisonStatus.UNCHANGED: "unchanged",
    ComparisonStatus.STILL_GOOD: "still good",
}
_STATUS_RANK: dict[ComparisonStatus, int] = {s: i for i, s in enumerate(ComparisonStatus)}

TRANSITIONS: dict[tuple[Verdict, Verdict], ComparisonStatus] = {
    (Verdict.GOOD, Verdict.GOOD): ComparisonStatus.STILL_GOOD,
    (Verdict.GOOD, Verdict.BAD): ComparisonStatus.REGRESSED,
    (Verdict.GOOD, Verdict.UNSURE): ComparisonStatus.GOOD_TO_UNSURE,
    (Verdict.BAD, Verdict.GOOD): ComparisonStatus.FIXED,
    (Verdict.BAD, Verdict.BAD): ComparisonStatus.STILL_BAD,
    (Verdict.BAD, Verdict.UNSURE): ComparisonStatus.BAD_TO_UNSURE,
    (Verdict.UNSURE, Verdict.GOOD): ComparisonStatus.UNSURE_TO_GOOD,
    (Verdict.UNSURE, Verdict.BAD): ComparisonStatus.UNSURE_TO_BAD,
    (Verdict.UNSURE, Verdict.UNSURE): ComparisonStatus.STILL_UNSURE,
}


def _present(output: Output | None) -> Output | None:
    # A cancelled output is the user stopping a call, not an answer: it counts as none.
    if output is None or output.status == OutputStatus.CANCELLED:
        return None
    return output


def same_text(a: Output, b: Output) -> bool:
    """Both outputs are ok answers whose whitespace-normalized texts are equal."""
    return (
        a.status == OutputStatus.OK
        and b.status == OutputStatus.OK
        and normalize_output_text(a.text) == normalize_output_text(b.text)
    )


def compare(
    baseline: Output | None,
    baseline_verdict: Verdict | None,
    revision: Output | None,
    revision_verdict: Verdict | None,
) -> ComparisonStatus:
    """The comparison status of one case (the table in this module's docstring)."""
    return compare_plain(
        None if baseline is None else baseline.status.value,
        None if baseline_verdict is None else baseline_verdict.value,
        None if baseline is None else baseline.text,
        None if revision is None else revision.status.value,
        None if revision_verdict is None else revision_verdict.value,
        None if revision is None else revision.text,
    )


_OK, _ERROR, _CANCELLED = OutputStatus.OK.value, OutputStatus.ERROR.value, \
    OutputStatus.CANCELLED.value
_PLAIN_TRANSITIONS: dict[tuple[str, str], ComparisonStatus] = {
    (before.value, after.value): status for (before, after), status in TRANSITIONS.items()
}


def compare_plain(
    baseline_status: str | None,
    baseline_verdict: str | None,
    baseline_text: str | None,
    revision_status: str | None,
    revision_verdict: str | None,
    revision_text: str | None,
) -> ComparisonStatus:
    """`compare` on plain values as the store holds them: output statuses and verdicts as
    their string values (None: no output / unlabelled). The one implementation of the
    table, so that the screens can compare 100,000 cases without building objects."""
    if revision_status is None or revision_status == _CANCELLED:
        return ComparisonStatus.MISSING
    if revision_status == _ERROR:
        return ComparisonStatus.ERROR
    if baseline_status is None or baseline_status == _CANCELLED:
        return ComparisonStatus.NEW
    if baseline_verdict is not None and revision_verdict is not None:
        return _PLAIN_TRANSITIONS[(baseline_verdict, revision_verdict)]
    if baseline_status == _OK and revision_status == _OK and (
        baseline_text == revision_text  # equal texts normalize equal: skip the regex
        or normalize_output_text(baseline_text or "")
        == normalize_output_text(revision_text or "")
    ):
        return ComparisonStatus.UNCHANGED
    if revision_verdict is None:
        return ComparisonStatus.CHANGED_UNLABELLED
    return ComparisonStatus.NO_BASELINE_VERDICT


# ---------------------------------------------------------------------- answer facts
# An answer as one plain tuple, the shape `Store.answers.facts_per_case` reads straight from SQLite:
# (case id, output id, output status value, output text, verdict value or None, label
# source value or None, cost, latency ms). For 100,000 cases, building an Output and a
# Label per case costs seconds; these tuples cost nothing beyond the read.
AnswerFacts = tuple[int, int, str, str, "str | None", "str | None", "float | None",
                    "float | None"]
FACT_CASE, FACT_OUTPUT, FACT_STATUS, FACT_TEXT, FACT_VERDICT, FACT_SOURCE, FACT_COST, \
    FACT_LATENCY = range(8)


def answer_facts(answer: Answer) -> AnswerFacts:
    """The plain tuple of an (output, label) pair."""
    output, label = answer.output, answer.label
    return (output.case_id, output.id, output.status.value, output.text,
            None if label is None else label.verdict.value,
            None if label is None else label.source.value,
            output.cost, output.latency_ms)


def with_label_facts(facts: AnswerFacts, label: Label) -> AnswerFacts:
    """`facts` with `label` as the output's current label."""
    return (*facts[:FACT_VERDICT], label.verdict.value, label.source.value,
            *facts[FACT_COST:])  # type: ignore[return-value]


def compare_facts(baseline: AnswerFacts | None, revision: AnswerFacts | None
                  ) -> ComparisonStatus:
    """`compare_answers` for two answers' facts, either of which may be absent."""
    if revision is None:
        return ComparisonStatus.MISSING
    if baseline is None:
        return compare_plain(None, None, None, revision[FACT_STATUS],
                             revision[FACT_VERDICT], revision[FACT_TEXT])
    return compare_plain(baseline[FACT_STATUS], baseline[FACT_VERDICT], baseline[FACT_TEXT],
                         revision[FACT_STATUS], revision[FACT_VERDICT], revision[FACT_TEXT])


def compare_all_facts(
    case_ids: Iterable[int],
    baseline: Mapping[int, AnswerFacts],
    revision: Mapping[int, AnswerFacts],
) -> dict[int, ComparisonStatus]:
    """`compare_all` over answers' facts (keyed by case id)."""
    get_b, get_r = baseline.get, revision.get
    return {cid: compare_facts(get_b(cid), get_r(cid)) for cid in case_ids}


def compare_answers(baseline: Answer | None, revision: Answer | None) -> ComparisonStatus:
    """`compare` for two (output, label) pairs, either of which may be absent."""
    return compare(
        None if baseline is None else baseline.output,
        None if baseline is None else baseline.verdict,
        None if revision is None else revision.output,
        None if revision is None else revision.verdict,
    )


def compare_all(
    case_ids: Iterable[int],
    baseline: Mapping[int, Answer],
    revision: Mapping[int, Answer],
) -> dict[int, ComparisonStatus]:
    """The status of every case in `case_ids` (answers keyed by case id)."""
    return {cid: compare_answers(baseline.get(cid), revision.get(cid)) for cid in case_ids}


def navigation_order(statuses: Mapping[int, ComparisonStatus]) -> list[int]:
    """Case ids in the order to step through them: regressions first, then
    changed-unlabelled, then fixed, then the rest; ties keep the mapping's order."""
    return sorted(statuses, key=lambda cid: statuses[cid].rank)


def pass_rate(verdicts: Iterable[Verdict | None]) -> float | None:
    """good / labelled (good + bad + unsure); None when nothing is labelled."""
    counts = Counter(v for v in verdicts if v is not None)
    labelled = sum(counts.values())
    return None if labelled == 0 else counts[Verdict.GOOD] / labelled


@dataclass(frozen=True)
class VersionSummary:
    """Counts for one version (and model) over a set of cases, from plain data.

    Every case is exactly one of: missing (no output), error, or ok; an ok output is
    exactly one of good, bad, unsure or unlabelled.
    """

    cases: int
    missing: int
    errors: int
    good: int
    bad: int
    unsure: int
    unlabelled: int
    carried: int  # labels (of any verdict) that were carried over, not given by hand
    cost: float  # sum of the known costs of the counted outputs
    mean_latency_ms: float | None  # over ok outputs with a known latency
    statuses: Mapping[ComparisonStatus, int] = field(default_factory=dict)

    @property
    def labelled(self) -> int:
        return self.good + self.bad + self.unsure

    @property
    def ok(self) -> int:
        return self.labelled + self.unlabelled

    @property
    def pass_rate(self) -> float | None:
        """good / labelled (unsure counts as labelled, not good); None if nothing labelled."""
        return None if self.labelled == 0 else self.good / self.labelled


def summarize(
    case_ids: Iterable[int],
    answers: Mapping[int, Answer],
    statuses: Mapping[int, ComparisonStatus] | None = None,
) -> VersionSummary:
    """Summarize one version's `answers` (keyed by case id) over `case_ids`.

    `statuses`, when given (from `compare_all` against a baseline), are counted too.
    Cancelled outputs count as missing; labels on error outputs are ignored. (The counting
    itself is `summarize_facts`, on the answers' plain facts.)
    """
    return summarize_facts(case_ids, {cid: answer_facts(a) for cid, a in answers.items()},
                           statuses)


def summarize_facts(
    case_ids: Iterable[int],
    facts: Mapping[int, AnswerFacts],
    statuses: Mapping[int, ComparisonStatus] | None = None,
) -> VersionSummary:
    """`summarize` over answers' facts (keyed by case id), without an Output and a Label
    per case: cancelled outputs count as missing; labels on error outputs are ignored."""
    missing = errors = good = bad = unsure = unlabelled = carried = 0
    cost = 0.0
    latencies: list[float] = []
    n = 0
    get = facts.get
    good_v, bad_v, carried_s = Verdict.GOOD.value, Verdict.BAD.value, LabelSource.CARRIED.value
    for cid in case_ids:
        n += 1
        answer = get(cid)
        if answer is None or answer[FACT_STATUS] == _CANCELLED:
            missing += 1
            continue
        if answer[FACT_COST] is not None:
            cost += answer[FACT_COST]
        if answer[FACT_STATUS] == _ERROR:
            errors += 1
            continue
        if answer[FACT_LATENCY] is not None:
            latencies.append(answer[FACT_LATENCY])
        verdict = answer[FACT_VERDICT]
        if verdict is None:
            unlabelled += 1
            continue
        if answer[FACT_SOURCE] == carried_s:
            carried += 1
        if verdict == good_v:
            good += 1
        elif verdict == bad_v:
            bad += 1
        else:
            unsure += 1
    counted = Counter(statuses.values()) if statuses is not None else Counter()
    return VersionSummary(
        cases=n,
        missing=missing,
        errors=errors,
        good=good,
        bad=bad,
        unsure=unsure,
        unlabelled=unlabelled,
        carried=carried,
        cost=cost,
        mean_latency_ms=sum(latencies) / len(latencies) if latencies else None,
        statuses={s: counted[s] for s in ComparisonStatus if counted[s]},
    )


@dataclass(frozen=True)
class VerdictChange:
    """A version under which a case's verdict differs from its verdict under the parent."""

    version_number: int
    parent_number: int | None
    before: Verdict | None  # None: the parent's answer was unlabelled, an error, or absent
    after: Verdict
    status: ComparisonStatus


def verdict_changes(
    versions: Sequence[PromptVersion], answers: Mapping[int, Answer]
) -> list[VerdictChange]:
    """Where one case's verdict changed along the version history (its provenance).

    `answers` is that case's answer per version id. A version is listed when its answer
    has a verdict that differs from the parent version's verdict (or the parent has none).
    Versions whose answer is unlabelled are skipped: an unknown is not a change.
    """
    by_id = {v.id: v for v in versions}
    changes: list[VerdictChange] = []
    for version in sorted(versions, key=lambda v: v.number):
        answer = answers.get(version.id)
        if answer is None or _present(answer.output) is None or answer.verdict is None:
            continue
        if answer.output.status == OutputStatus.ERROR:
            continue
        parent = by_id.get(version.parent_id) if version.parent_id is not None else None
        before_answer = answers.get(parent.id) if parent is not None else None
        before = None
        if before_answer is not None and _present(before_answer.output) is not None:
            before = before_answer.verdict
        if before == answer.verdict:
            continue
        changes.append(
            VerdictChange(
                version_number=version.number,
                parent_number=None if parent is None else parent.number,
                before=before,
                after=answer.verdict,
                status=compare_answers(before_answer, answer),
            )
        )
    return changes
