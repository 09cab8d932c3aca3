"""The assistant's pure pieces: judge-human agreement and Cohen's kappa against examples
computed by hand, policy coverage counts, near-duplicate detection, the rule: filter."""

from __future__ import annotations

import pytest

from coevo_tui.domain.agreement import agreement
from coevo_tui.domain.case_query import LINE_RULE, CaseQuery
from coevo_tui.domain.coverage import coverage
from coevo_tui.domain.diversity import NearDuplicates, VectorNearDuplicates, cosine, normalise
from coevo_tui.domain.model import PolicyRule, Verdict

G, B, U = Verdict.GOOD, Verdict.BAD, Verdict.UNSURE


# ---------------------------------------------------------------------- agreement
def test_three_class_agreement_and_kappa_match_the_hand_computation() -> None:
    # By hand: 7 of 10 agree (70%). Human: 5 good, 3 bad, 2 unsure; judge: 5 good, 4 bad,
    # 1 unsure. Chance agreement p_e = (5*5 + 3*4 + 2*1) / 100 = 0.39, so
    # kappa = (0.70 - 0.39) / (1 - 0.39) = 0.31 / 0.61 = 0.50820 (to 5 places).
    pairs = [(G, G)] * 4 + [(G, B), (B, B), (B, B), (B, G), (U, U), (U, B)]
    result = agreement(pairs)
    assert (result.n, result.agreed, result.percent) == (10, 7, 70.0)
    assert result.kappa == pytest.approx(0.31 / 0.61)
    assert round(result.kappa, 5) == 0.50820
    assert result.kappa_note == ""
    assert result.confusion == {
        (G, G): 4, (G, B): 1, (G, U): 0,
        (B, G): 1, (B, B): 2, (B, U): 0,
        (U, G): 0, (U, B): 1, (U, U): 1}
    assert result.line() == "10 answers: 70% agree, kappa 0.51"


def test_two_class_textbook_example() -> None:
    # 50 answers: 20 both good, 5 human good / judge bad, 10 human bad / judge good, 15
    # both bad. p_o = 35/50 = 0.7; p_e = (25*30 + 25*20) / 2500 = 0.5; kappa = 0.4.
    pairs = [(G, G)] * 20 + [(G, B)] * 5 + [(B, G)] * 10 + [(B, B)] * 15
    result = agreement(pairs)
    assert (result.n, result.agreed, result.percent) == (50, 35, 70.0)
    assert result.kappa == pytest.approx(0.4)


def test_kappa_is_undefined_when_everything_is_one_class_and_says_so() -> None:
    result = agreement([(B, B)] * 6)
    assert (result.n, result.agreed, result.percent, result.kappa) == (6, 6, 100.0, None)
    assert "undefined" in result.kappa_note and "bad" in result.kappa_note
    assert result.line().startswith("6 answers: 100% agree, kappa undefined")
    assert sum(result.confusion.values()) == 6 and len(result.confusion) == 9


def test_no_pairs_has_no_percent_and_no_kappa() -> None:
    result = agreement([])
    assert (result.n, result.percent, result.kappa) == (0, None, None)
    assert "no answers" in result.kappa_note
    assert set(result.confusion.values()) == {0} and len(result.confusion) == 9


@pytest.mark.parametrize(("pairs", "kappa"), [
    ([(G, G)] * 3 + [(B, B)] * 2, 1.0),          # perfect, two classes: defined
    ([(G, B)] * 4, 0.0),                           # p_o = p_e = 0
    ([(G, G), (G, B)], 0.0),                       # one side one class: p_e = p_o = 0.5
])
def test_edge_cases_that_are_defined(pairs, kappa) -> None:
    assert agreement(pairs).kappa == pytest.approx(kappa)


# ---------------------------------------------------------------------- coverage
def test_coverage_counts_active_cases_candidates_and_pass_rate_per_rule() -> None:
    rules = [PolicyRule(1, 9, 1, "No slurs"), PolicyRule(2, 9, 2, "No threats"),
             PolicyRule(3, 9, 3, "Banter is fine")]
    cases = [(1, 1, "active"), (2, 1, "active"), (3, 1, "candidate"), (4, 1, "rejected"),
             (5, 2, "candidate"), (6, None, "active"), (7, 7, "active"),
             (8, 1, "archived"), (9, 1, "active")]
    verdicts = {1: G, 2: B, 6: G, 7: "unsure", 9: None}
    rows = coverage(rules, cases, verdicts)
    assert [(r.number, r.active_cases, r.candidates_waiting, r.good, r.labelled)
            for r in rows] == [(1, 3, 1, 1, 2), (2, 0, 1, 0, 0), (3, 0, 0, 0, 0)]
    assert rows[0].pass_rate == 0.5 and rows[1].pass_rate is None
    assert [r.uncovered for r in rows] == [False, True, True]
    # Cases of no rule (or of a rule this version lacks) in a last row, when asked.
    *_, unassigned = coverage(rules, cases, verdicts, include_unassigned=True)
    assert (unassigned.number, unassigned.active_cases, unassigned.good,
            unassigned.labelled) == (None, 2, 1, 2)


# ---------------------------------------------------------------------- near duplicates
def test_normalised_text_ignores_case_punctuation_width_and_spacing() -> None:
    assert normalise("  GG  ez,\tUNINSTALL!! ") == "gg ez uninstall"
    assert normalise("ｆｕｌｌ width") == "full width"
    assert normalise("café — naïve") == "café naïve"
    assert normalise("😀 😀") == "😀 😀"  # nothing but symbols: kept, not emptied


def test_near_duplicates_are_found_and_distinct_texts_pass() -> None:
    seen = NearDuplicates(["gg ez, uninstall", "you played like a bot lol"])
    assert seen.check("Uninstall. GG EZ!!") == "gg ez, uninstall"
    assert seen.check("u played like a bot lol") == "you played like a bot lol"
    assert seen.check("kys") is None
    assert seen.check("you played like a bot, and I will find your house") is None
    seen.add("kys")
    assert seen.check("KYS!") == "kys"
    strict = NearDuplicates(["u played like a bot lol"], threshold=99)
    assert strict.check("you played like a bot lol") is None
    assert len(seen) == 3


def test_vector_near_duplicates_by_cosine() -> None:
    assert cosine([1, 0], [0, 1]) == 0 and cosine([1, 1], [2, 2]) == pytest.approx(1)
    seen = VectorNearDuplicates(threshold=0.9)
    seen.add("a", [1.0, 0.0, 0.0])
    seen.add("b", [0.0, 1.0, 0.0])
    assert seen.check([0.95, 0.1, 0.0]) == "a"
    assert seen.check([0.5, 0.5, 0.7]) is None
    assert seen.check([0, 0, 0]) is None


# ---------------------------------------------------------------------- rule: filter
def test_the_rule_filter_word_keeps_cases_probing_those_rules() -> None:
    lines = [(1, "c1", "a", "[]", "generated", "active", 1),
             (2, "c2", "b", "[]", "generated", "active", 2),
             (3, "c3", "c", "[]", "manual", "active", None)]
    assert LINE_RULE == 6

    def ids(text: str) -> list[int]:
        return [line[0] for line in CaseQuery.parse(text).select(lines, None, 0, 9)]

    assert ids("rule:2") == [2]
    assert ids("rule:1 rule:none") == [1, 3]
    assert ids("rule:n") == [3]
    assert ids("") == [1, 2, 3]
    query = CaseQuery.parse("rule:x")
    assert query.problems == ("no rule 'x' (a rule's number, or none)",)
