"""The assistant's answers for the TUI's tests, scripted per task through the fake provider.

The model under test and the assistant are both `coevo-fake/...` models in these tests, so
an answer queued with `fake_model.script(...)` would go to whichever call comes first.
`AssistantAnswers` is a `fake_model.responder` that answers by the task instead: it tells
the assistant's calls apart by their system prompts (assist/*.py) and answers anything else
(the model under test) as the echo model does. Each task's answer is settable; `asked`
counts the calls per task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from coevo_tui.assist import candidates, judge, rationale, revision, rules, similar

# The first line of each task's system prompt names the task.
_TASKS = {
    rules.SYSTEM.splitlines()[0]: "rules",
    candidates.SYSTEM.splitlines()[0]: "candidates",
    similar.SYSTEM.splitlines()[0]: "similar",
    rationale.SYSTEM.splitlines()[0]: "rationale",
    revision.SYSTEM.splitlines()[0]: "revision",
    judge.SYSTEM.splitlines()[0]: "judge",
}


def task_of(messages: list[dict[str, Any]]) -> str | None:
    """The assistant task a call is for, or None (the model under test)."""
    for message in messages:
        if message.get("role") == "system":
            first = str(message.get("content", "")).splitlines()[:1]
            if first and first[0] in _TASKS:
                return _TASKS[first[0]]
    return None


def cases_json(*items: tuple[str, int | None, str]) -> str:
    """A candidates (or similar) answer: (input, rule or None, reason) per item."""
    found = []
    for text, rule, reason in items:
        item: dict[str, Any] = {"input": text, "reason": reason}
        if rule is not None:
            item["rule"] = rule
        found.append(item)
    return json.dumps({"cases": found})


def item_chunks(*items: tuple[str, int | None, str]) -> list[str]:
    """A candidates answer cut so that each item ends a chunk of its own (with
    `fake_model.hold(after_chunks=k)` exactly k items reach the app before the hold)."""
    pieces = ['{"cases": [']
    for number, (text, rule, reason) in enumerate(items):
        item: dict[str, Any] = {"input": text, "reason": reason}
        if rule is not None:
            item["rule"] = rule
        pieces.append(("," if number else "") + json.dumps(item))
    pieces[0] += pieces.pop(1)
    pieces.append("]}")
    return pieces


@dataclass
class AssistantAnswers:
    """A `fake_model.responder` answering each assistant task with the answer set here."""

    rules: list[tuple[int, str]] = field(default_factory=lambda: [
        (1, "No slurs"), (2, "No real threats"), (3, "Trash talk is fine")])
    cases: list[tuple[str, int | None, str]] = field(default_factory=lambda: [
        ("ur aim is trash, go back to bronze", 3, "Insults skill, not a person."),
        ("i will find u after the match", 2, "A threat without a real place or means."),
        ("that ref is a total clown lol", 1, "A mild insult that is not a slur."),
    ])
    similar: list[tuple[str, int | None, str]] = field(default_factory=lambda: [
        ("ur gonna regret this next round", None, "Same vague threat, other words."),
        ("watch ur back in the lobby", None, "A threat set in the game, not real life."),
    ])
    rationale: str = "Trash talk about skill is allowed; threats to a real person are not."
    revision: dict[str, Any] = field(default_factory=dict)
    verdict: tuple[str, str] = ("bad", "It lets a threat against a player through.")
    asked: dict[str, int] = field(default_factory=dict)

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        task = task_of(messages)
        self.asked[task or "model"] = self.asked.get(task or "model", 0) + 1
        if task is None:
            user = next((str(m.get("content", "")) for m in reversed(messages)
                         if m.get("role") == "user"), "")
            return f"Reply to: {user}"
        if task == "rules":
            return json.dumps({"rules": [{"number": n, "title": t, "text": t}
                                         for n, t in self.rules]})
        if task == "candidates":
            return cases_json(*self.cases)
        if task == "similar":
            return cases_json(*self.similar)
        if task == "rationale":
            return json.dumps({"rationale": self.rationale})
        if task == "revision":
            return json.dumps(self.revision)
        verdict, reason = self.verdict
        return json.dumps({"verdict": verdict, "reason": reason})
