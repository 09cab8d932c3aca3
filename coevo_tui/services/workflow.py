"""Where a project stands in the loop, and the next steps, from the project's own facts.

The paper's system guides people through the loop's steps; coevo's screens do each step.
This module says which step is next (the Cases screen's loop line and the loop panel show
it, the key that does it beside it), in one fixed order that follows the loop (SPEC
section 1):

1. write the instructions (the newest version's are empty)         p
2. add cases (there is no active case)                              a, or G
3. review the candidates waiting in the queue                       v
4. run the newest version (active cases without an answer)          R
5. label the answers                                                l (then n)
6. say why for bad and unsure labels without a rationale            l, then r
7. look at the regressions from the parent version                  c
8. cover the rules no active case probes                            / rule:K, then G
9. draft a revision from the failures that have a rationale         p, then ctrl+d

Each step is done when its fact is gone (nothing waits for a label, no regression is
left...), so its hint disappears by itself; once a revision is saved the newest version
has no answers and the loop starts again at step 4. The facts are aggregate counts
(`store.loop`), cheap at 100,000 cases. Keys are named by their binding ids, so the
screens show them after the user's keymap; the default key is given for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coevo_tui.store import Store

#: The project preference (store.settings) saying whether the Cases screen shows the loop
#: line; absent means shown.
LOOP_LINE_PREFERENCE = "loop_line"

#: The loop's stages as the paper names them (SPEC section 1), and the short word the
#: one-line hint uses for each.
STAGES = {
    "write": ("Write instructions", "Write"),
    "discover": ("Discover edge cases", "Discover"),
    "run": ("Run", "Run"),
    "label": ("Label", "Label"),
    "compare": ("Re-evaluate and compare", "Compare"),
    "revise": ("Revise", "Revise"),
}


@dataclass(frozen=True)
class KeyHint:
    """A key that does (part of) a step: its binding id, its default key, and what it
    does, in words that follow the key ("R" "runs them"). `in_line`: the one-line hint
    names it too (False for an alternative or a refinement the panel lists); `terse`: the
    line names the key alone, the next key saying what they do ("l, then r writes one")."""

    binding: str
    default: str
    does: str
    in_line: bool = True
    terse: bool = False


@dataclass(frozen=True)
class Step:
    """One step of the loop as the project's facts make it: done or not, how many things
    wait (`count`), what waits in words (`hint`; for a done step, what was found), and the
    keys that do it. `applies` is False for a step with nothing to work on yet (no answer
    to label, no earlier version to compare with): it counts as done."""

    name: str
    stage: str
    title: str
    done: bool
    count: int
    hint: str
    keys: tuple[KeyHint, ...]
    applies: bool = True

    @property
    def stage_title(self) -> str:
        return STAGES[self.stage][0]

    @property
    def stage_word(self) -> str:
        return STAGES[self.stage][1]


@dataclass(frozen=True)
class LoopState:
    """Every step, in the loop's order, under the newest version."""

    version_number: int
    steps: tuple[Step, ...]

    @property
    def next(self) -> Step | None:
        """The first step not done (None: the loop is up to date)."""
        return next((step for step in self.steps if not step.done), None)

    @property
    def pending(self) -> list[Step]:
        return [step for step in self.steps if not step.done]

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


async def loop_state(store: Store, model: str | None = None) -> LoopState:
    """Where the project stands: every step of the loop under the newest version, counting
    the answers of `model` (the model under test; None: each case's newest answer of any
    model, as the Cases screen's Verdict column counts)."""
    versions = await store.versions.all()
    newest = versions[-1]
    v = f"v{newest.number}"
    by_id = {version.id: version for version in versions}
    parent = by_id.get(newest.parent_id) if newest.parent_id is not None else None
    states = await store.cases.counts_by_state()
    active, waiting = states.get("active", 0), states.get("candidate", 0)
    unanswered = await store.loop.unanswered(newest.id, model) if active else 0
    verdicts = await store.loop.verdicts(newest.id, model)
    regressed = (await store.loop.regressions(parent.id, newest.id, model)
                 if parent is not None and verdicts.answered else 0)
    extracted, uncovered = await store.loop.rules_without_cases()

    steps: list[Step] = []
    written = bool(newest.instructions.strip())
    steps.append(Step(
        "instructions", "write", "Write the instructions", written, 0 if written else 1,
        f"{v} has instructions" if written else f"{v} has no instructions yet",
        (KeyHint("app.prompt", "p", "writes them"),)))
    steps.append(Step(
        "cases", "discover", "Add cases to the test set", active > 0, 0 if active else 1,
        f"{_plural(active, 'active case')}" if active else "the test set has no case yet",
        (KeyHint("cases.add", "a", "adds one"),
         KeyHint("cases.generate", "G", "asks the assistant for some", in_line=False))))
    steps.append(Step(
        "candidates", "discover", "Review the candidates", waiting == 0, waiting,
        (f"{_plural(waiting, 'candidate')} {'waits' if waiting == 1 else 'wait'} for review"
         if waiting else "no candidate waits for review"),
        (KeyHint("app.candidates", "v", "reviews them"),)))
    if not unanswered:
        run_hint = f"every active case has an answer under {v}" if active else \
            "no case to run"
    elif not verdicts.answered and parent is not None:
        run_hint = f"{v} is not run yet: {_plural(unanswered, 'case')} to answer"
    else:
        run_hint = (f"{_plural(unanswered, 'case')} {'has' if unanswered == 1 else 'have'}"
                    f" no answer under {v}")
    steps.append(Step(
        "run", "compare" if parent is not None else "run", f"Run {v} over the test set",
        unanswered == 0, unanswered, run_hint, (KeyHint("app.run", "R", "runs them"),)))
    unlabelled = verdicts.unlabelled
    steps.append(Step(
        "label", "label", "Label the answers", unlabelled == 0, unlabelled,
        (f"{_plural(unlabelled, 'answer')} {'waits' if unlabelled == 1 else 'wait'}"
         " for a label" if unlabelled else
         f"{_plural(verdicts.answered, 'answer')} of {v}, all labelled" if verdicts.answered
         else f"no answer of {v} yet"),
        (KeyHint("cases.label", "l", "labels them"),
         KeyHint("label.next_unlabelled", "n", "finds the next unlabelled",
                 in_line=False)), applies=verdicts.answered > 0))
    unexplained = verdicts.failing_unexplained
    steps.append(Step(
        "rationale", "label", "Say why for bad and unsure", unexplained == 0,
        unexplained,
        (f"{_plural(unexplained, 'bad/unsure label')} "
         f"{'lacks' if unexplained == 1 else 'lack'} a rationale" if unexplained else "each bad or unsure label has one"
         if verdicts.failing else "no bad or unsure label yet"),
        (KeyHint("cases.label", "l", "opens them", terse=True),
         KeyHint("label.rationale", "r", "writes one")), applies=verdicts.failing > 0))
    if parent is None:
        compare_hint = f"{v} has no earlier version to compare with"
    elif regressed:
        compare_hint = (f"{_plural(regressed, 'answer')} regressed from "
                        f"v{parent.number} to {v}")
    else:
        compare_hint = f"no regression from v{parent.number} to {v}"
    steps.append(Step(
        "regressions", "compare", "Look at the regressions", regressed == 0, regressed,
        compare_hint, (KeyHint("app.compare", "c", "compares"),),
        applies=parent is not None and verdicts.answered > 0))
    if uncovered:
        number, title = uncovered[0]
        rules_hint = (f"rule {number} ({title}) has no case" if len(uncovered) == 1 else
                      f"{_plural(len(uncovered), 'rule')} have no case")
    elif extracted:
        rules_hint = f"each of the {_plural(extracted, 'rule')} has a case"
    else:
        rules_hint = "no rules extracted yet (generating cases extracts them)"
    first_rule = uncovered[0][0] if uncovered else "K"
    steps.append(Step(
        "rules", "discover", "Cover every rule with cases", not uncovered, len(uncovered),
        rules_hint,
        (KeyHint("cases.filter", "/", f"rule:{first_rule}"),
         KeyHint("cases.generate", "G", "generates some")), applies=extracted > 0))
    explained = verdicts.failing_explained
    steps.append(Step(
        "revise", "revise", "Draft a revision from the failures", explained == 0, explained,
        (f"{_plural(explained, 'failure')} {'has' if explained == 1 else 'have'} a rationale"
         if explained else f"the bad and unsure answers of {v} need a rationale first"
         if verdicts.failing else f"no bad or unsure answer of {v} yet"),
        (KeyHint("app.prompt", "p", "opens the prompt", terse=True),
         KeyHint("prompt.draft_revision", "ctrl+d", f"drafts v{newest.number + 1}")),
        applies=verdicts.failing > 0))
    return LoopState(newest.number, tuple(steps))
