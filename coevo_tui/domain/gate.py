"""The CI gate of `coevo eval --check`, as pure decisions: why it fails, when the judge may
stand in for the user, and the judge's verdicts put where the user's labels are missing.

The gate fails (exit 1) for each of these reasons, all of them reported:

* a case regressed (good under the baseline, bad under the revision);
* ``--min-pass-rate X`` was given and the revision's pass rate (good / labelled) is below
  X, or is undefined because no answer under the revision is labelled: a gate that
  cannot measure must not pass;
* answering the revision's missing cases ended in errors (an unreachable model must not
  pass a deploy: its errors are not passes).

The judge (``--judge``) decides unlabelled answers only when it has earned it: its
agreement with the user over the answers that have both a label and a judge verdict
(Cohen's kappa, domain/agreement.py) must be at least ``--min-kappa`` over at least
`MIN_CHECKED_OUTPUTS` answers. A judge nobody has checked must neither block nor pass a
deploy, so otherwise the gate refuses (bad input, exit 2) before anything is run.
"""

from __future__ import annotations

from collections.abc import Mapping

from coevo_tui.domain.agreement import Agreement
from coevo_tui.domain.model import Judgement, Label, LabelSource, OutputStatus
from coevo_tui.domain.status import Answer

MIN_CHECKED_OUTPUTS = 20
DEFAULT_MIN_KAPPA = 0.6


def _answers(n: int) -> str:
    return f"{n} answer{'' if n == 1 else 's'}"


def judge_refusal(measured: Agreement, min_kappa: float = DEFAULT_MIN_KAPPA,
                  min_outputs: int = MIN_CHECKED_OUTPUTS) -> str | None:
    """Why the judge's verdicts may not decide the gate (one line), or None when they may.
    `measured` is the judge's agreement with the user over the project."""
    advice = "label more of the answers the judge has judged, or leave out --judge"
    if measured.n < min_outputs:
        return (f"--judge: the judge has been checked against your labels on only "
                f"{_answers(measured.n)} (it needs at least {min_outputs} to be trusted "
                f"in a gate); {advice}")
    if measured.kappa is None:
        return f"--judge: over {_answers(measured.n)}, {measured.kappa_note}; {advice}"
    if measured.kappa < min_kappa:
        return (f"--judge: the judge agrees with your labels with kappa {measured.kappa:.2f} "
                f"over {_answers(measured.n)}, below --min-kappa {min_kappa:g}; {advice}")
    return None


def with_judge_verdicts(answers: Mapping[int, Answer], judgements: Mapping[int, Judgement]
                        ) -> tuple[dict[int, Answer], set[int]]:
    """`answers` (by case id) where every ok, unlabelled answer with a judgement (keyed
    by output id) carries the judge's verdict as a label of source judge (not stored:
    id 0), and the ids of the cases whose verdict so came from the judge. A user's
    label, of any source, always wins."""
    decided: dict[int, Answer] = dict(answers)
    judged: set[int] = set()
    for case_id, answer in answers.items():
        if answer.label is not None or answer.output.status != OutputStatus.OK:
            continue
        judgement = judgements.get(answer.output.id)
        if judgement is None:
            continue
        label = Label(id=0, output_id=answer.output.id, verdict=judgement.verdict,
                      rationale=judgement.reason, source=LabelSource.JUDGE)
        decided[case_id] = Answer(answer.output, label)
        judged.add(case_id)
    return decided, judged


def gate_reasons(*, baseline: int, revision: int, regressed: int, regressed_by_judge: int = 0,
                 good: int, labelled: int, min_pass_rate: float | None = None,
                 run_errors: int = 0) -> list[str]:
    """Why the gate fails, one line each (empty: it passes). `baseline` and `revision`
    are version numbers; `good` and `labelled` count the revision's answers."""
    reasons: list[str] = []
    if regressed:
        cases = "case" if regressed == 1 else "cases"
        by_judge = f", {regressed_by_judge} by the judge's verdict" if regressed_by_judge else ""
        reasons.append(f"{regressed} {cases} regressed (good under v{baseline}, bad under "
                       f"v{revision}{by_judge})")
    if min_pass_rate is not None:
        if labelled == 0:
            reasons.append(f"no answer under v{revision} is labelled, so its pass rate is "
                           f"undefined and cannot meet --min-pass-rate {min_pass_rate:g}")
        elif good / labelled < min_pass_rate:
            reasons.append(f"the pass rate under v{revision} is {good / labelled:.1%} "
                           f"({good} good of {labelled} labelled), below --min-pass-rate "
                           f"{min_pass_rate:g}")
    if run_errors:
        reasons.append(f"{run_errors} case{'' if run_errors == 1 else 's'} got an error "
                       f"from the model under v{revision} (stored with the message; "
                       "errors are not passes)")
    return reasons
