"""Carry-over: identical answers to the same case share one verdict (SPEC section 2).

An ok output whose whitespace-normalized text equals that of an already labelled ok output
of the same case (under any version or model) inherits that label, marked as *carried*
and pointing (``carried_from``) at the label it came from.

Rules, all pure here and applied by the store in one transaction:

* A carried label always points at a *root*: a label given by a person (source human or
  judge, the latter being a judge verdict the user confirmed). Carrying from a carried
  label points at that label's own root, so ``carried_from`` chains have length one and
  can never loop.
* When several identical outputs are labelled, the most recent human (or confirmed) label
  wins; carried labels are only a fallback.
* A new output that already has a label is never overwritten (`label_to_carry`).
* When a person labels an output, every other identical output of the case that is
  unlabelled, or whose label was itself carried from an older root, takes the new label
  as carried (`propagation_targets`): "label once, identical answers inherit". Labels a
  person gave are never overwritten by propagation.
* A label that is no longer its output's current label has been superseded since: it is
  not spread; the newer label is the one to spread (`spread_targets`).

The store reads a case's answers, asks `inherited_label` or `spread_targets`, and writes
what they decide (verdict and rationale copied, source carried, ``carried_from`` the root).
"""

from __future__ import annotations

from collections.abc import Iterable

from coevo_tui.domain.model import Label, LabelSource, Output, OutputStatus
from coevo_tui.domain.status import Answer, same_text


def is_carried(label: Label | None) -> bool:
    """True for a label inherited from an identical output rather than given by a person."""
    return label is not None and label.source == LabelSource.CARRIED


def root_label_id(label: Label) -> int:
    """The id of the person-given label this label stands for (itself unless carried)."""
    if label.source == LabelSource.CARRIED and label.carried_from is not None:
        return label.carried_from
    return label.id


def describe_label(label: Label | None) -> str:
    """Words for a label cell that tell a carried or judge label apart from a human one
    without relying on colour: 'good', 'bad (carried)', 'unsure (judge)', 'unlabelled'."""
    if label is None:
        return "unlabelled"
    if label.source == LabelSource.HUMAN:
        return label.verdict.value
    return f"{label.verdict.value} ({label.source.value})"


def _preference(label: Label) -> tuple[int, int]:
    # Person-given labels beat carried ones; among equals the most recent (highest id) wins.
    return (0 if label.source == LabelSource.CARRIED else 1, label.id)


def label_to_carry(
    new_output: Output,
    new_label: Label | None,
    others: Iterable[Answer],
) -> Label | None:
    """The label `new_output` should inherit from `others` (the case's other outputs with
    their current labels), or None. The caller copies its verdict and rationale, with
    source carried and ``carried_from = root_label_id(result)``."""
    if new_label is not None or new_output.status != OutputStatus.OK:
        return None
    best: Label | None = None
    for other, label in others:
        if label is None or other.id == new_output.id or other.case_id != new_output.case_id:
            continue
        if not same_text(other, new_output):
            continue
        if best is None or _preference(label) > _preference(best):
            best = label
    return best


def propagation_targets(
    label: Label,
    source_output: Output,
    others: Iterable[Answer],
) -> list[Output]:
    """The outputs that should take `label` (just given by a person to `source_output`) as
    a carried label: identical ok outputs of the same case that are unlabelled, or whose
    carried label comes from an older root. Empty when `label` is itself carried."""
    if label.source == LabelSource.CARRIED or label.output_id != source_output.id:
        return []
    if source_output.status != OutputStatus.OK:
        return []
    targets: list[Output] = []
    for other, other_label in others:
        if other.id == source_output.id or other.case_id != source_output.case_id:
            continue
        if not same_text(other, source_output):
            continue
        if other_label is None or (
            is_carried(other_label) and root_label_id(other_label) < label.id
        ):
            targets.append(other)
    return targets


def inherited_label(new_output: Output, answers: Iterable[Answer]) -> Label | None:
    """The label `new_output` inherits from the answers of its case (read with their
    current labels, `new_output` among them or not), or None: `label_to_carry` with
    `new_output`'s own current label taken from `answers`."""
    answers = list(answers)
    own = next((label for out, label in answers if out.id == new_output.id), None)
    return label_to_carry(new_output, own, answers)


def spread_targets(label: Label, answers: Iterable[Answer]) -> list[Answer]:
    """The answers (of `label`'s case, with their current labels) whose outputs take
    `label` as a carried label, in the order of `answers`: `propagation_targets` with the
    label each target holds now. Empty when `label`'s output is not among `answers`, or
    when `label` is no longer its output's current label (superseded since: the newer
    label is the one to spread)."""
    answers = list(answers)
    source = next((a for a in answers if a.output.id == label.output_id), None)
    if source is None or source.label is None or source.label.id != label.id:
        return []
    targets = {out.id for out in propagation_targets(label, source.output, answers)}
    return [a for a in answers if a.output.id in targets]
