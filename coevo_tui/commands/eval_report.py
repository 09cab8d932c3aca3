"""What `coevo eval` reports, in its three forms: lines for a person, one JSON document
(``--json``) and a JUnit XML report (``--junit FILE``) that CI systems display natively.

All three are read off one `EvalReport`, so they cannot disagree. The JUnit mapping, one
``<testcase>`` per active case (name: the case's id, classname: ``coevo.vN`` with N the
revision):

* good under the revision: passed;
* bad under the revision: ``<failure>`` (type "regressed" when it was good under the
  baseline, else its comparison status), the message carrying both verdicts and the
  rationale;
* an error answer: ``<error>`` with the model's message;
* unlabelled, unsure, or not run under the revision: ``<skipped>`` saying which.
A verdict that came from the judge (``--judge``) says so in the message ("judge: ...")
and in a ``verdict_source`` property.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coevo_tui.domain.agreement import Agreement
from coevo_tui.domain.model import OutputStatus, PromptVersion, Verdict, first_line
from coevo_tui.domain.status import Answer, ComparisonStatus, VersionSummary

if TYPE_CHECKING:
    from coevo_tui.llm.runner import RunSummary


@dataclass(frozen=True)
class ReportCase:
    """An active case as the report shows it."""

    id: int
    ext_id: str
    input: str


@dataclass
class EvalReport:
    """Everything `coevo eval` found, ready to be printed or written."""

    project: str
    baseline: PromptVersion
    revision: PromptVersion
    model: str | None
    cases: Sequence[ReportCase]
    baseline_answers: Mapping[int, Answer]
    revision_answers: Mapping[int, Answer]  # with the judge's verdicts when --judge
    statuses: Mapping[int, ComparisonStatus]
    baseline_summary: VersionSummary
    revision_summary: VersionSummary
    checked: bool = False
    reasons: list[str] = field(default_factory=list)
    min_pass_rate: float | None = None
    ran: RunSummary | None = None  # the missing answers run first (--check), if any
    judged: set[int] = field(default_factory=set)  # case ids decided by the judge
    judge_agreement: Agreement | None = None  # set when --judge
    min_kappa: float | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons

    def listed(self, status: ComparisonStatus) -> list[ReportCase]:
        return [c for c in self.cases if self.statuses[c.id] == status]

    def cost(self) -> tuple[float | None, int]:
        """The summed stored cost of the revision's answers counted (None when none has a
        known cost), and how many of them have no known cost."""
        costs = [a.output.cost for c in self.cases
                 if (a := self.revision_answers.get(c.id)) is not None
                 and a.output.status != OutputStatus.CANCELLED]
        known = [c for c in costs if c is not None]
        return (round(sum(known), 8) if known else None), len(costs) - len(known)


# ---------------------------------------------------------------------------- text
def _rate(summary: VersionSummary) -> str:
    rate = summary.pass_rate
    if rate is None:
        return "pass rate n/a (nothing labelled)"
    return f"pass rate {rate:.1%} ({summary.good} good of {summary.labelled} labelled)"


def _details(summary: VersionSummary) -> str:
    errors = f"{summary.errors} error{'' if summary.errors == 1 else 's'}"
    parts = [f"{summary.unlabelled} unlabelled", errors]
    if summary.missing:
        parts.append(f"{summary.missing} not run")
    return ", ".join(parts)


def text_lines(report: EvalReport) -> list[str]:
    """The report for a person: versions, both pass rates, the fixed and regressed cases
    (a verdict from the judge marked "(judge)"), the other statuses."""
    base, cand = report.baseline, report.revision
    on_model = f", model {report.model}" if report.model else ""
    lines = [f"v{base.number} -> v{cand.number} on {len(report.cases)} active cases{on_model}"]
    for version, summary in ((base, report.baseline_summary), (cand, report.revision_summary)):
        lines.append(f"v{version.number}: {_rate(summary)}; {_details(summary)}")
    if report.judge_agreement is not None:
        lines.append(f"judge: {len(report.judged)} verdict{'' if len(report.judged) == 1 else 's'}"
                     f" under v{cand.number} from the judge, marked (judge); agreement with "
                     f"your labels: {report.judge_agreement.line()}")
    for status in (ComparisonStatus.FIXED, ComparisonStatus.REGRESSED):
        listed = report.listed(status)
        lines.append(f"{status.text}: {len(listed)}")
        id_width = max((len(c.ext_id) for c in listed), default=0)
        for case in listed:
            mark = "  (judge)" if case.id in report.judged else ""
            lines.append(f"  {case.ext_id:<{id_width}}  {first_line(case.input, 70)}{mark}")
    others = [f"{s.text} {n}" for s, n in report.revision_summary.statuses.items()
              if s not in (ComparisonStatus.FIXED, ComparisonStatus.REGRESSED)]
    if others:
        lines.append("other: " + ", ".join(others))
    return lines


# ---------------------------------------------------------------------------- JSON
def _side(answer: Answer | None, *, judged: bool = False) -> dict[str, Any]:
    if answer is None or answer.output.status == OutputStatus.CANCELLED:
        return {"status": "not run", "verdict": None, "source": None, "rationale": None,
                "from_judge": False, "output": None, "error": None}
    label = answer.label if answer.output.status == OutputStatus.OK else None
    return {
        "status": answer.output.status.value,
        "verdict": None if label is None else label.verdict.value,
        "source": None if label is None else label.source.value,
        "rationale": (label.rationale or None) if label is not None else None,
        "from_judge": judged,
        "output": answer.output.text if answer.output.status == OutputStatus.OK else None,
        "error": answer.output.error,
    }


def _counts(summary: VersionSummary) -> dict[str, int]:
    return {"good": summary.good, "bad": summary.bad, "unsure": summary.unsure,
            "unlabelled": summary.unlabelled, "errors": summary.errors,
            "not_run": summary.missing, "carried": summary.carried}


def json_document(report: EvalReport) -> dict[str, Any]:
    """The ``--json`` document (README "Gate CI with coevo eval --check" lists its fields)."""
    cost, unpriced = report.cost()
    agreement = report.judge_agreement

    def case_entry(case: ReportCase) -> dict[str, Any]:
        return {"id": case.ext_id, "input": case.input,
                "baseline": _side(report.baseline_answers.get(case.id)),
                "revision": _side(report.revision_answers.get(case.id),
                                  judged=case.id in report.judged)}

    return {
        "project": report.project,
        "versions": {"baseline": report.baseline.number, "revision": report.revision.number},
        "model": report.model,
        "cases": len(report.cases),
        "pass_rates": {"baseline": report.baseline_summary.pass_rate,
                       "revision": report.revision_summary.pass_rate},
        "counts": {"baseline": _counts(report.baseline_summary),
                   "revision": _counts(report.revision_summary),
                   "statuses": {s.value: n for s, n in report.revision_summary.statuses.items()}},
        "fixed": [case_entry(c) for c in report.listed(ComparisonStatus.FIXED)],
        "regressed": [case_entry(c) for c in report.listed(ComparisonStatus.REGRESSED)],
        "cost": cost,
        "unpriced_outputs": unpriced,
        "ran": None if report.ran is None else {
            "ran": report.ran.to_run, "ok": report.ran.ok, "errors": report.ran.errors,
            "cached": report.ran.cached, "already_done": report.ran.skipped},
        "judge": None if agreement is None else {
            "verdicts_used": len(report.judged), "agreement_outputs": agreement.n,
            "kappa": agreement.kappa, "percent_agree": agreement.percent,
            "min_kappa": report.min_kappa},
        "gate": {"checked": report.checked, "passed": report.passed,
                 "min_pass_rate": report.min_pass_rate, "reasons": list(report.reasons)},
    }


# ---------------------------------------------------------------------------- JUnit
def _verdict_words(answer: Answer | None) -> str:
    if answer is None or answer.output.status == OutputStatus.CANCELLED:
        return "not run"
    if answer.output.status == OutputStatus.ERROR:
        return "an error"
    return "unlabelled" if answer.verdict is None else answer.verdict.value


def junit_tree(report: EvalReport) -> ET.ElementTree:
    """The JUnit XML report (see the module docstring for the mapping)."""
    base, cand = report.baseline.number, report.revision.number
    suite_name = f"coevo v{base} -> v{cand}"
    suites = ET.Element("testsuites", name=f"coevo {report.project}")
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    props = ET.SubElement(suite, "properties")
    for name, value in (("baseline", f"v{base}"), ("revision", f"v{cand}"),
                        ("model", report.model or "")):
        ET.SubElement(props, "property", name=name, value=value)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in report.cases:
        counts["tests"] += 1
        answer = report.revision_answers.get(case.id)
        status = report.statuses[case.id]
        judged = case.id in report.judged
        element = ET.SubElement(suite, "testcase", name=case.ext_id, classname=f"coevo.v{cand}",
                                time="0")
        if judged:
            case_props = ET.SubElement(element, "properties")
            ET.SubElement(case_props, "property", name="verdict_source", value="judge")
        by = "judge: " if judged else ""
        rationale = answer.label.rationale if answer is not None and answer.label else ""
        why = f": {first_line(rationale, 300)}" if rationale.strip() else ""
        if status == ComparisonStatus.MISSING:
            counts["skipped"] += 1
            ET.SubElement(element, "skipped", message=f"not run under v{cand}")
        elif status == ComparisonStatus.ERROR:
            assert answer is not None
            counts["errors"] += 1
            error = ET.SubElement(element, "error", type="model error",
                                  message=first_line(answer.output.error or "error", 300))
            error.text = answer.output.error or ""
        elif answer is None or answer.verdict is None:
            counts["skipped"] += 1
            ET.SubElement(element, "skipped", message=f"unlabelled under v{cand}")
        elif answer.verdict == Verdict.BAD:
            counts["failures"] += 1
            before = _verdict_words(report.baseline_answers.get(case.id))
            kind = "regressed" if status == ComparisonStatus.REGRESSED else status.text
            failure = ET.SubElement(
                element, "failure", type=kind,
                message=f"{by}{kind}: {before} under v{base}, bad under v{cand}{why}")
            failure.text = (f"input: {case.input}\noutput: {answer.output.text}\n"
                            f"rationale: {rationale}")
        elif answer.verdict == Verdict.UNSURE:
            counts["skipped"] += 1
            ET.SubElement(element, "skipped", message=f"{by}unsure under v{cand}{why}")
    for key, value in counts.items():
        suite.set(key, str(value))
        suites.set(key, str(value))
    ET.indent(suites)
    return ET.ElementTree(suites)
