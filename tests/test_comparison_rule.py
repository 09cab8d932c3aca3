"""The one rule for which versions and which model's answers are compared, shared by
`coevo eval` and the Compare screen (services/comparison.py), and the one rule for which
answer a label goes on (services/labelling.py)."""

from __future__ import annotations

import pytest

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import Output, OutputStatus, PromptVersion
from coevo_tui.services.comparison import (
    SeveralModels,
    VersionPair,
    choose_model,
    choose_versions,
    merge_counts,
)
from coevo_tui.services.labelling import SeveralAnswers, answer_of, choose_output


def _versions(n: int) -> list[PromptVersion]:
    return [PromptVersion(id=10 + i, number=i, instructions=f"v{i}", user_template=None,
                          parent_id=None if i == 1 else 10 + i - 1, note="", created_at="")
            for i in range(1, n + 1)]


def test_the_revision_is_the_newest_and_the_baseline_its_parent_by_default() -> None:
    versions = _versions(3)
    pair = choose_versions(versions)
    assert (pair.baseline.number, pair.revision.number) == (2, 3)
    pair = choose_versions(versions, revision=2)
    assert (pair.baseline.number, pair.revision.number) == (1, 2)
    pair = choose_versions(versions, baseline=1)
    assert (pair.baseline.number, pair.revision.number) == (1, 3)


@pytest.mark.parametrize(("baseline", "revision", "message"), [
    (9, None, "no version 9"),
    (None, 9, "no version 9"),
    (2, 2, "both v2"),
    (3, None, "v3 is the newest version"),
    (None, 1, "v1 has no earlier version"),
])
def test_impossible_pairs_are_refused_for_eval(baseline, revision, message) -> None:
    with pytest.raises(UserError, match=message):
        choose_versions(_versions(3), baseline, revision)


def test_the_compare_screen_may_compare_a_version_with_itself() -> None:
    one = _versions(1)
    with pytest.raises(UserError, match="eval needs two prompt versions"):
        choose_versions(one, purpose="eval")
    assert choose_versions(one, allow_same=True).same
    assert choose_versions(_versions(3), 2, 2, allow_same=True).same
    assert choose_versions(_versions(3), None, 1, allow_same=True).same


def test_the_model_asked_for_then_the_model_under_test_then_the_only_one() -> None:
    pair = VersionPair(*_versions(2))
    answered = {"a": 10, "b": 3}
    assert choose_model(pair, answered, asked="b") == "b"
    assert choose_model(pair, answered, under_test="b") == "b"
    assert choose_model(pair, {"a": 10}, under_test="c") == "a"  # the only one
    assert choose_model(pair, {}, under_test="c") == "c"  # nothing answered yet
    assert choose_model(pair, {}) is None
    with pytest.raises(UserError, match="no outputs from model z under v1 or v2"):
        choose_model(pair, answered, asked="z")


def test_several_models_and_none_under_test_is_not_guessed() -> None:
    pair = VersionPair(*_versions(2))
    with pytest.raises(SeveralModels, match=r"several models \(a, b\)") as several:
        choose_model(pair, {"a": 10, "b": 3}, under_test="c")
    assert several.value.counts == {"a": 10, "b": 3}  # what Compare's picker lists


def test_counts_add_up_over_versions() -> None:
    assert merge_counts({"a": 2}, {"a": 3, "b": 1}) == {"a": 5, "b": 1}


def _output(model: str, status: OutputStatus = OutputStatus.OK) -> Output:
    return Output(id=1, case_id=1, version_id=1, model=model, params={}, text="t",
                  status=status, error="boom" if status == OutputStatus.ERROR else None)


def test_the_answer_a_label_goes_on() -> None:
    both = {"a": _output("a"), "b": _output("b")}
    assert answer_of(both, "b").model == "b"
    assert answer_of(both, None, under_test="a").model == "a"
    assert answer_of({"a": _output("a")}, None, under_test="z").model == "a"
    assert answer_of({}) is None
    with pytest.raises(SeveralAnswers):
        answer_of(both)
    with pytest.raises(NotFound, match="no output from model z"):
        answer_of(both, "z")
    with pytest.raises(UserError, match="is an error"):
        choose_output({"a": _output("a", OutputStatus.ERROR)}, "c1", 2, None)
    with pytest.raises(NotFound, match="has no output yet"):
        choose_output({}, "c1", 2, None)
