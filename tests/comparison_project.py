"""A small, fixed project for the Compare and Overview tests and snapshots.

Three versions of a moderation policy and ten cases; every answer and label is stored
directly (no model call), with fixed costs and latencies, so what the screens show is the
same on every run. Between v2 (baseline) and v3 (revision) the cases cover: regressed,
changed-unlabelled, fixed, error, good-to-unsure, new, still bad, unchanged, still good,
and one case not run under v3.
"""

from __future__ import annotations

from pathlib import Path

from coevo_tui.domain.model import OutputStatus, Verdict
from coevo_tui.store import NewCase, Store

MODEL = "coevo-fake/echo"

V1 = "Remove messages that attack people.\nAllow trash talk about the game."
V2 = ("Remove messages that attack people for who they are (slurs, threats).\n"
      "Allow trash talk about the game and about play skill.")
V3 = ("Remove messages that attack people for who they are (slurs, threats).\n"
      "Allow trash talk about the game and about play skill.\n"
      "Flag doxxing (real names, addresses) even when it is phrased as a joke.")

# ext id, input, then per version (v1, v2, v3): None (not run), "error", or (text, verdict)
CASES: list[tuple[str, str, list[object]]] = [
    ("c1", "you play like my grandma, uninstall",
     [("ALLOW: trash talk about skill", "good"), ("ALLOW: trash talk about skill", "good"),
      ("REMOVE: insult", "bad")]),  # regressed
    ("c2", "I know where you live, 12 Elm Street",
     [("ALLOW: no slur", "bad"), ("ALLOW: no slur", "bad"),
      ("REMOVE: doxxing, shares an address", None)]),  # changed, unlabelled
    ("c3", "go back to your country",
     [("ALLOW: not about the game", "bad"), ("ALLOW: not about the game", "bad"),
      ("REMOVE: attacks origin", "good")]),  # fixed
    ("c4", "gg ez",
     [("ALLOW: banter", "good"), ("ALLOW: banter", "good"), "error"]),  # error
    ("c5", "your aim is a war crime",
     [("ALLOW: hyperbole about aim", "good"), ("ALLOW: hyperbole about aim", "good"),
      ("REMOVE?: mentions war crimes", "unsure")]),  # good to unsure
    ("c6", "real name is John Smith lol", [None, None, ("REMOVE: doxxing", "good")]),  # new
    ("c7", "kys noob",
     [("ALLOW: trash talk", "bad"), ("ALLOW: trash talk", "bad"),
      ("ALLOW: gamer slang", "bad")]),  # still bad
    ("c8", "nice shot!",
     [("ALLOW: friendly", "good"), ("ALLOW: friendly", "good"),
      ("ALLOW:  friendly", None)]),  # unchanged (whitespace only)
    ("c9", "report this cheater, he is aimbotting",
     [("ALLOW: reporting cheating", "good"), ("ALLOW: reporting cheating", "good"),
      ("ALLOW: report of cheating", "good")]),  # still good
    ("c10", "lag again, this server is trash", [("ALLOW: about the server", "good"),
                                                ("ALLOW: about the server", "good"),
                                                None]),  # not run
]

RATIONALES = {
    ("c2", 1): "Sharing a home address is doxxing, even without a slur.",
    ("c3", 1): "Telling someone to go back to their country attacks origin.",
    ("c7", 2): "'kys' tells someone to kill themselves: never allowed.",
    ("c1", 2): "Mocking play skill is allowed trash talk.",
}


async def build(path: Path) -> None:
    """Write the project to `path` (a new file)."""
    store = await Store.open(path, name="moderation", instructions=V1, note="first policy")
    try:
        await store.settings.update(model=MODEL)
        ids = await store.cases.add_many(
            [NewCase(input=text, ext_id=ext) for ext, text, _ in CASES], source_name="test")
        case_ids = dict(zip((ext for ext, _, _ in CASES), ids))
        versions = [await store.versions.by_number(1)]
        label_ids: dict[tuple[str, int], int] = {}
        for number in (1, 2, 3):
            if number > 1:
                motivating = [(case_ids[ext], label_ids.get((ext, n)))
                              for (ext, n) in RATIONALES if n == number - 1]
                versions.append(await store.versions.create(
                    V2 if number == 2 else V3,
                    note="narrow removals to identity attacks" if number == 2
                    else "flag doxxing",
                    motivating=motivating))
            version = versions[-1]
            for index, (ext, _, answers) in enumerate(CASES):
                answer = answers[number - 1]
                if answer is None:
                    continue
                common = dict(case_id=case_ids[ext], version_id=version.id, model=MODEL,
                              params={}, tokens_in=20, tokens_out=5)
                if answer == "error":
                    await store.outputs.add(**common, text="", status=OutputStatus.ERROR,
                                           error="server error (HTTP 500): internal error")
                    continue
                text, verdict = answer  # type: ignore[misc]
                output = await store.outputs.add(
                    **common, text=text, status=OutputStatus.OK,
                    latency_ms=400.0 + 10 * index + 100 * number, cost=0.0005)
                if verdict is not None:
                    label, _ = await store.labels.write(output.id, Verdict(verdict),
                                                  RATIONALES.get((ext, number), ""))
                    label_ids[(ext, number)] = label.id
    finally:
        await store.close()
