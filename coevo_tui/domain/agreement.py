"""How far the judge agrees with the user (SPEC section 2, Judge): percent agreement,
Cohen's kappa and the 3x3 confusion counts over answers that have both verdicts.

Cohen's kappa is (p_o - p_e) / (1 - p_e): observed agreement p_o corrected by the
agreement p_e two raters would reach by chance with their own verdict frequencies. It is
undefined when p_e is 1, which happens exactly when both sides gave one and the same
verdict to everything: then there is nothing to tell chance from skill, and `kappa` is
None with a note saying so. It is computed on counts, in integers until the final
division, so "p_e is 1" is an exact test and nothing is divided by zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from coevo_tui.domain.model import Verdict

VERDICTS = (Verdict.GOOD, Verdict.BAD, Verdict.UNSURE)


@dataclass(frozen=True)
class Agreement:
    """Agreement over `n` answers with a human and a judge verdict.

    `percent` is 100 * agreed / n (None without answers). `kappa` is Cohen's kappa, None
    when it is undefined, with `kappa_note` saying why (empty when defined).
    `confusion[(human, judge)]` counts answers per pair of verdicts, all 9 cells present
    (rows: the user's verdict; columns: the judge's)."""

    n: int
    agreed: int
    percent: float | None
    kappa: float | None
    kappa_note: str
    confusion: dict[tuple[Verdict, Verdict], int] = field(default_factory=dict)

    def line(self) -> str:
        """One line: "12 answers: 83% agree, kappa 0.71" (or why kappa is undefined)."""
        if self.n == 0:
            return "no answer has both a label and a judge verdict"
        kappa = f"kappa {self.kappa:.2f}" if self.kappa is not None else self.kappa_note
        answers = "answer" if self.n == 1 else "answers"
        return f"{self.n} {answers}: {self.percent:.0f}% agree, {kappa}"


def agreement(pairs: Iterable[tuple[Verdict, Verdict]]) -> Agreement:
    """Agreement over (human verdict, judge verdict) pairs."""
    confusion = {(h, j): 0 for h in VERDICTS for j in VERDICTS}
    for human, judge in pairs:
        confusion[(Verdict(human), Verdict(judge))] += 1
    n = sum(confusion.values())
    agreed = sum(confusion[(v, v)] for v in VERDICTS)
    if n == 0:
        return Agreement(0, 0, None, None, "kappa undefined: no answers to compare",
                         confusion)
    human_counts = {v: sum(confusion[(v, j)] for j in VERDICTS) for v in VERDICTS}
    judge_counts = {v: sum(confusion[(h, v)] for h in VERDICTS) for v in VERDICTS}
    # p_e * n^2, exactly: the chance agreement in counts.
    chance = sum(human_counts[v] * judge_counts[v] for v in VERDICTS)
    percent = 100.0 * agreed / n
    if chance == n * n:
        (only,) = [v for v in VERDICTS if human_counts[v] == n]
        return Agreement(n, agreed, percent, None,
                         f"kappa undefined: every verdict is {only.value} on both sides,"
                         " so agreement by chance is certain", confusion)
    kappa = (n * agreed - chance) / (n * n - chance)
    return Agreement(n, agreed, percent, kappa, "", confusion)
