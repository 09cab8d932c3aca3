"""Which two versions, and which model's answers, a comparison is about.

One rule for `coevo eval` and the Compare screen (README "Comparing versions"):

Versions. The revision is the one asked for, else the newest version; the baseline is the
one asked for, else the revision's parent (the version it was saved after). Asking for
the same version twice, for a baseline when the revision is v1, or for an unknown number
is refused with one line. A project with a single version has nothing to compare: eval
refuses; the Compare screen shows v1 against itself and says how to get a second version.

Model. Versions are compared on one model's answers (mixing models would compare a model
with another, not a version with another). The model is:

1. the one asked for (``--model`` on eval, `m` or the Overview on Compare);
2. else the model under test (``--model`` at start, the project's model, ``COEVO_MODEL``;
   not the offline fallback) when it answered either version;
3. else the only model that answered either version;
4. else, when several models answered and none of them is the model under test, there is
   no sensible default: eval refuses naming them ("choose one with --model") and Compare
   asks which one, listing them with how many cases each answered.
With no answers at all, there is no model to filter on (every case is "not run").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import PromptVersion


class SeveralModels(UserError):
    """Several models answered and nothing says which to compare (rule 4)."""

    def __init__(self, message: str, counts: Mapping[str, int]) -> None:
        super().__init__(message)
        self.counts = dict(counts)


@dataclass(frozen=True)
class VersionPair:
    """The baseline (left, older) and the revision (right, newer) of a comparison."""

    baseline: PromptVersion
    revision: PromptVersion

    @property
    def same(self) -> bool:
        return self.baseline.id == self.revision.id


def choose_versions(versions: Sequence[PromptVersion], baseline: int | None = None,
                    revision: int | None = None, *, allow_same: bool = False,
                    purpose: str = "comparing") -> VersionPair:
    """The versions to compare (see the module docstring). `allow_same` (the Compare
    screen): a version may be compared with itself (a project with one version, or the
    same version picked twice) instead of refused."""
    if not versions:
        raise UserError("the project has no prompt version")
    by_number = {v.number: v for v in versions}
    by_id = {v.id: v for v in versions}
    for number in (baseline, revision):
        if number is not None and number not in by_number:
            raise UserError(f"no version {number} in this project")
    if baseline is None and revision is None and len(versions) < 2:
        if allow_same:
            return VersionPair(versions[-1], versions[-1])
        raise UserError(f"{purpose} needs two prompt versions; save another with coevo "
                        "prompt (or p in the TUI)")
    rev = by_number[revision] if revision is not None else versions[-1]
    if baseline is not None:
        base = by_number[baseline]
        if base.id == rev.id and not allow_same:
            if revision is None:
                raise UserError(f"v{base.number} is the newest version; choose an older "
                                "baseline or a revision")
            raise UserError(f"the baseline and the revision are both v{base.number}")
        return VersionPair(base, rev)
    parent = by_id.get(rev.parent_id) if rev.parent_id is not None else None
    if parent is None:
        if allow_same:
            return VersionPair(rev, rev)
        raise UserError(f"v{rev.number} has no earlier version; choose a baseline")
    return VersionPair(parent, rev)


def choose_model(pair: VersionPair, answered: Mapping[str, int], *,
                 asked: str | None = None, under_test: str | None = None) -> str | None:
    """The model whose answers are compared (see the module docstring).

    `answered`: model -> number of cases it answered under either version (e.g. the sum
    of `models_with_outputs` of both). `under_test`: the configured model under test, or
    None when only the offline fallback would answer. Raises `UserError` for an asked
    model with no answers, `SeveralModels` when rule 4 applies."""
    where = (f"v{pair.revision.number}" if pair.same
             else f"v{pair.baseline.number} or v{pair.revision.number}")
    if asked is not None:
        if asked not in answered:
            known = sorted(answered)
            raise UserError(f"no outputs from model {asked} under {where}"
                            + (f" (outputs from: {', '.join(known)})" if known else ""))
        return asked
    if under_test is not None and answered.get(under_test):
        return under_test
    models = sorted(m for m, n in answered.items() if n)
    if len(models) == 1:
        return models[0]
    if not models:
        return under_test
    across = "under v" + (f"{pair.revision.number}" if pair.same
                          else f"{pair.baseline.number} and v{pair.revision.number}")
    raise SeveralModels(f"outputs {across} come from several models ({', '.join(models)}); "
                        "choose one with --model", answered)


def merge_counts(*counts: Mapping[str, int]) -> dict[str, int]:
    """Model -> answered cases, added up over several versions' counts."""
    total: dict[str, int] = {}
    for one in counts:
        for model, n in one.items():
            total[model] = total.get(model, 0) + n
    return total
