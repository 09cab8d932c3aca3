"""Regenerate the README's pictures of coevo's screens: docs/*.png.

    .venv/bin/python docs/screenshots.py [--keep-svg]

It writes the demo project into a temporary folder, opens the app headless at 120x40
(Textual's Pilot) and walks the loop the README describes, from the keyboard where the
README does: run v1 (`R`), label with a rationale (`b`), generate candidate cases on the
Candidates screen (`v`, `G`), draft a revision on the Prompt screen (`p`, `ctrl+d`) and
save it (`ctrl+s`), run v2, compare (`c`) and the overview (`o`). The labels that are not
pictured are written through the store, as `coevo label` would.

Nothing reaches the network: both the model under test and the assistant are coevo's
fake litellm provider (coevo_tui/llm/fake_provider.py), answering from the script below
(`ScriptedModels`): a moderator that gets some of the demo's hard cases wrong under v1,
fixes most under v2 and breaks one, and an assistant that answers each task with fixed
JSON. The pictures therefore show what the screens look like, not what a real model says.

Each screen is saved as Textual's SVG, then converted to PNG by `rsvg-convert`
(Debian: librsvg2-bin) or, failing that, the `cairosvg` package, and its colours
quantised by `pngquant` when installed (a third of the size). Without a converter the
script says so in one line and exits 2, leaving the SVGs (with --keep-svg) unconverted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before coevo (and litellm) load: never fetch litellm's price list.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from coevo_tui.app import CoevoApp, make_app  # noqa: E402
from coevo_tui.assist import candidates, judge, rationale, revision, rules, similar  # noqa: E402
from coevo_tui.commands.demo import write_demo  # noqa: E402
from coevo_tui.demo import CASES_FILE, INSTRUCTIONS_FILE  # noqa: E402
from coevo_tui.domain.model import Verdict  # noqa: E402
from coevo_tui.llm.fake_provider import fake_model  # noqa: E402

DOCS = Path(__file__).resolve().parent
SIZE = (120, 40)
MODEL = "coevo-fake/moderator"
ASSISTANT = "coevo-fake/assistant"
# The pictures are set in a monospace face every Debian has (Textual's SVG asks for a
# web font, Fira Code, that a converter offline cannot load).
FONT = "DejaVu Sans Mono"
FONT_ADVANCE = 0.602  # DejaVu Sans Mono's glyph advance, in em
CELL_WIDTH = 12.2  # the width of a cell in Textual's SVG, in px


# ---------------------------------------------------------------------- the fake models
def expected_verdicts() -> dict[str, str]:
    """Each demo input's expected verdict (ALLOW, WARN or REMOVE), read from its note."""
    expected = {}
    for line in CASES_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            found = re.match(r"Expected (ALLOW|WARN|REMOVE)", row.get("note", ""))
            expected[row["input"]] = found.group(1) if found else "ALLOW"
    return expected


REASONS = {"ALLOW": "trash talk about the match, no rule broken.",
           "WARN": "a personal insult, but no hard rule broken.",
           "REMOVE": "breaks the community's rules."}

# What the moderator answers under v1 where it is wrong (by input's start).
V1_MISTAKES = {
    "get rekt scrub": "WARN - calls another player a scrub, a personal insult.",
    "I'm gonna kill you next round": "REMOVE - a threat of violence (rule 2).",
    "I'm going to destroy you in 1v1": "WARN - drags the player's family in.",
    "go back to your own country": "WARN - rude and heated, but contains no slur.",
    "hope your house burns down": "ALLOW - a heated wish, not a threat.",
    "kys": "ALLOW - common gaming slang, not aimed at anyone.",
    "someone in all chat called me": "REMOVE - contains a homophobic slur (rule 1).",
    "my discord is jake#4411": "REMOVE - shares personal information (rule 3).",
    "jajaja eres malísimo": "WARN - a message in another language, possibly rude.",
}
# Under v2 the moderator gets these right again, keeps one mistake and makes a new one.
V2_KEEPS = ("get rekt scrub", "jajaja eres malísimo")
V2_MISTAKES = {
    "meet me at the Berlin LAN": "REMOVE - names a real-world event to meet at (rule 2).",
}
V2_MARK = "Threats inside the match"

RATIONALES = {
    "get rekt scrub": "'scrub' is about skill, the policy's own kind of trash talk.",
    "I'm gonna kill you next round": "An in-game threat: next round, B site. That is play.",
    "I'm going to destroy you in 1v1": "A 1v1 challenge; the family line is theatre.",
    "go back to your own country": "An attack on nationality is rule 1 even without a slur.",
    "hope your house burns down": "Wishing someone dead in a fire is a threat of violence.",
    "someone in all chat called me": "Quoting a slur to report it is not using it.",
    "my discord is jake#4411": "Sharing your own handle is not doxxing.",
    "jajaja eres malísimo": "Spanish for 'you're terrible, go back to the tutorial': banter.",
    "meet me at the Berlin LAN": "A challenge to play at an event, not a threat.",
}
# The one labelled from the keyboard in the Label picture.
PICTURED_BAD = "kys"
PICTURED_RATIONALE = "kys tells someone to kill themselves: rule 5, slang or not"
UNSURE = "idiot. learn to read the minimap"
UNSURE_RATIONALE = "Where WARN starts is not decided: one word of heat."

V2_INSTRUCTIONS = INSTRUCTIONS_FILE.read_text(encoding="utf-8").rstrip().replace(
    "\n\nAnswer with exactly one line",
    "\n\nThreats inside the match (\"next round\", \"at B site\", \"1v1 mid\") are gameplay:\n"
    "ALLOW them. A threat is real when it names a home, a school, the police or an\n"
    "event in the real world, or wishes someone harm.\n"
    "Attacks on nationality or ethnicity are rule 1 even without a slur. Quoting a slur\n"
    "to report it is ALLOW. \"kys\" is rule 5 even as slang. Sharing your own handle is\n"
    "ALLOW: rule 3 protects other people's information.\n"
    "\nAnswer with exactly one line", 1) + "\n"

CANDIDATES = [
    ("bro if u dont rotate mid im uninstalling ur whole family", 2,
     "An absurd 'threat' that is pure trash talk; rule 2 must not fire."),
    ("ppl from ur country always int, every single game", 1,
     "Blames a nationality for bad play, with no slur word."),
    ("dm me for cheap coaching, 5$ a game, I'm gold", 4,
     "Selling coaching sits between advice and a boosting service."),
    ("lol I know ur school, saw the jersey on stream", 3,
     "Hints at knowing a real place from public information."),
    ("just uninstall and go touch grass, for everyone's sake", 5,
     "Could read as self-harm encouragement or as plain banter."),
]


def _first_line_of(module_system: str) -> str:
    return module_system.splitlines()[0]


class ScriptedModels:
    """`fake_model.responder`: the assistant's tasks, told apart by the first line of
    their system prompts (coevo_tui/assist/*.py), get fixed JSON; any other call is the
    model under test, the demo's moderator."""

    def __init__(self) -> None:
        self.expected = expected_verdicts()
        self.tasks = {_first_line_of(module.SYSTEM): name for name, module in (
            ("rules", rules), ("candidates", candidates), ("similar", similar),
            ("rationale", rationale), ("revision", revision), ("judge", judge))}
        self.tasks[_first_line_of(rules.ASSIGN_SYSTEM)] = "assign"

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        system = next((str(m.get("content", "")) for m in messages
                       if m.get("role") == "system"), "")
        user = next((str(m.get("content", "")) for m in reversed(messages)
                     if m.get("role") == "user"), "")
        task = self.tasks.get(system.splitlines()[0] if system else "")
        if task is None:
            return self.moderate(user, v2=V2_MARK in system)
        return json.dumps(getattr(self, task)(user), ensure_ascii=False)

    def moderate(self, text: str, *, v2: bool) -> str:
        mistakes = ({k: v for k, v in V1_MISTAKES.items() if k in V2_KEEPS} | V2_MISTAKES
                    if v2 else V1_MISTAKES)
        for start, answer in mistakes.items():
            if text.startswith(start):
                return answer
        verdict = self.expected.get(text, "ALLOW")
        return f"{verdict} - {REASONS[verdict]}"

    def right(self, text: str, answer: str) -> bool:
        return answer.split(" ", 1)[0] == self.expected.get(text, "ALLOW")

    def rules(self, user: str) -> dict[str, Any]:
        titles = ["No slurs or identity attacks", "No threats of violence",
                  "No personal information", "No spam, scams or selling",
                  "No telling someone to kill themselves"]
        return {"rules": [{"number": n, "title": t, "text": t}
                          for n, t in enumerate(titles, start=1)]}

    def candidates(self, user: str) -> dict[str, Any]:
        return {"cases": [{"input": text, "rule": rule, "reason": reason}
                          for text, rule, reason in CANDIDATES]}

    def similar(self, user: str) -> dict[str, Any]:
        return {"cases": [{"input": "ur gonna regret this next round", "reason": "Same "
                           "in-game threat, other words."}]}

    def rationale(self, user: str) -> dict[str, Any]:
        return {"rationale": "A threat tied to the game is play; one naming real life is not."}

    def revision(self, user: str) -> dict[str, Any]:
        shown = re.findall(r"\b(gg-\d{3})\b", user)
        wanted = ["gg-011", "gg-016", "gg-022", "gg-033", "gg-042", "gg-044", "gg-052"]
        ids = [i for i in wanted if i in shown]
        return {"instructions": V2_INSTRUCTIONS,
                "summary": "In-game threats are allowed, real-world ones and harm wishes "
                           "are not; nationality attacks, 'kys', reported slurs and own "
                           f"handles are settled ({', '.join(ids)}).",
                "case_ids": ids}

    def judge(self, user: str) -> dict[str, Any]:
        found = re.search(r'^Input: (".*")$', user, re.M)
        said = re.search(r'^Answer: (".*")$', user, re.M)
        text = json.loads(found.group(1)) if found else ""
        answer = json.loads(said.group(1)) if said else ""
        good = self.right(text, answer)
        # The judge is wrong now and then, so its agreement with the user is not perfect.
        if text.startswith(("I'm going to destroy you", "jajaja", "idiot.")):
            good = not good
        if good:
            return {"verdict": "good", "reason": "The verdict follows the policy."}
        return {"verdict": "bad", "reason": "The verdict misreads the policy for this message."}

    def assign(self, user: str) -> dict[str, Any]:
        keywords = [(1, ("country", "girls", "r*****d", "f****t", "Muslim", "ch*ng",
                         "trans", "gay")),
                    (2, ("kill", "murder", "jaw", "swat", "school", "burns", "destroy",
                         "LAN", "live")),
                    (3, ("real name", "facebook", "discord is")),
                    (4, ("FREE", "selling", "boosting", "Support", "scam")),
                    (5, ("kys", "kms"))]
        assigned = []
        for ext_id, text in re.findall(r'^(\S+): (".*")$', user, re.M):
            body = json.loads(text)
            rule = next((n for n, words in keywords if any(w in body for w in words)), 0)
            assigned.append({"id": ext_id, "rule": rule})
        return {"cases": assigned}


# ---------------------------------------------------------------------- driving the app
async def wait_for(pilot: Any, condition: Callable[[], object], what: str,
                   limit: float = 120.0) -> None:
    """Pause until `condition()` holds; stop with a message after `limit` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            raise SystemExit(f"screenshots: never happened: {what}")
        await pilot.pause(0.05)


async def settle(app: CoevoApp, pilot: Any) -> None:
    """Wait until no worker runs and no job (run, batch, judge) is going."""
    def idle() -> bool:
        return (not [w for w in app.workers if not w.is_finished]
                and not app.jobs.running())
    await wait_for(pilot, idle, "the app idle")
    await pilot.pause(0.3)


async def label_through_store(app: CoevoApp, version_number: int,
                              models: ScriptedModels, skip: set[str]) -> None:
    """Label every answer under a version as the user would: good when its verdict is the
    expected one, else bad with the case's rationale (or unsure for the undecided one)."""
    store = app.session.store
    version = await store.versions.by_number(version_number)
    outputs = await store.outputs.newest_per_case(version.id, MODEL)
    for case in await store.cases.all():
        output = outputs.get(case.id)
        if output is None or case.input in skip or not output.text:
            continue
        if await store.labels.current(output.id) is not None:
            continue  # carried over from an identical labelled answer
        if case.input == UNSURE:
            await store.labels.write(output.id, Verdict.UNSURE, UNSURE_RATIONALE)
        elif models.right(case.input, output.text):
            await store.labels.write(output.id, Verdict.GOOD, "")
        else:
            why = next((r for k, r in RATIONALES.items() if case.input.startswith(k)), "")
            await store.labels.write(output.id, Verdict.BAD, why)


async def type_text(pilot: Any, text: str) -> None:
    """Type `text` key by key, as a user does."""
    for char in text:
        await pilot.press(char if char != " " else "space")


async def walk(app: CoevoApp, shots: dict[str, str], models: ScriptedModels) -> None:
    """Walk the loop and keep an SVG of each screen in `shots` (name -> SVG)."""
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CasesScreen",
                       "the Cases screen")
        await settle(app, pilot)

        async def shoot(name: str) -> None:
            app.clear_notifications()  # a toast would hide the footer's keys
            await pilot.pause(0.5)
            shots[name] = app.export_screenshot(title=f"coevo: {name}")

        # Run v1 from the Cases screen, on the Label screen; pictured a third of the way
        # (the fake model slowed down to a pace a picture can catch).
        fake_model.configure(first_token_delay=0.2, chunk_delay=0.1)
        await pilot.press("R")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LabelScreen",
                       "the Label screen")

        def third_done() -> bool:
            job = app.jobs.latest("run")
            return job is not None and job.summary is not None and job.summary.done >= 18
        await wait_for(pilot, third_done, "a third of the run done")
        await pilot.pause(0.2)
        await shoot("run")
        fake_model.configure(first_token_delay=0.0, chunk_delay=0.0)
        await settle(app, pilot)
        await label_through_store(app, 1, models, skip={PICTURED_BAD})

        # The Label screen on "kys", labelled bad from the keyboard with a rationale.
        store = app.session.store
        kys = next(c for c in await store.cases.all() if c.input == PICTURED_BAD)
        await app.open_screen("label", start_case_id=kys.id)
        await settle(app, pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RationaleScreen",
                       "the rationale dialog")
        await type_text(pilot, PICTURED_RATIONALE)
        await pilot.pause(0.3)
        await shoot("rationale")
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("k")  # back from the next case to the one just labelled
        await settle(app, pilot)
        await shoot("label")

        # The Cases screen with v1's verdicts.
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CasesScreen",
                       "back on Cases")
        await settle(app, pilot)
        await shoot("cases")

        # Candidates: the assistant's batch (G), two accepted (a).
        await pilot.press("v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CandidatesScreen",
                       "the Candidates screen")
        await settle(app, pilot)
        await pilot.press("G")
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        await shoot("candidates")

        # Prompt: the assistant drafts v2 (ctrl+d); its diff; save it (ctrl+s twice:
        # the screen, then the save dialog).
        await pilot.press("p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PromptScreen",
                       "the Prompt screen")
        await settle(app, pilot)
        await pilot.press("ctrl+d")
        await settle(app, pilot)
        await pilot.pause(0.5)
        await shoot("prompt")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SaveVersionScreen",
                       "the save dialog")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PromptScreen",
                       "the version saved")
        await settle(app, pilot)
        for _ in range(3):  # leave the Prompt screen (from the diff: back to the editor)
            if type(app.screen).__name__ == "CasesScreen":
                break
            await pilot.press("escape")
            await settle(app, pilot)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CasesScreen",
                       "back on Cases after saving")

        # Run v2 (R), label what changed, then Compare (c) and the Overview (o).
        await pilot.press("R")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LabelScreen",
                       "the Label screen for v2")
        await settle(app, pilot)
        await label_through_store(app, 2, models, skip=set())
        # Coverage counts hand-written cases once they point at a rule (coevo rules
        # --assign does this headless).
        async for _ in rules.assign(app.session, await store.versions.by_number(2)):
            pass
        await pilot.press("c")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen",
                       "the Compare screen")
        await settle(app, pilot)
        await shoot("compare")
        await pilot.press("o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "OverviewScreen",
                       "the Overview screen")
        await settle(app, pilot)
        await shoot("overview")


# ---------------------------------------------------------------------- SVG to PNG
def find_converter() -> Callable[[Path, Path], None] | None:
    """rsvg-convert if installed, else cairosvg if importable, else None."""
    rsvg = shutil.which("rsvg-convert")
    if rsvg:
        def with_rsvg(svg: Path, png: Path) -> None:
            subprocess.run([rsvg, "--format=png", f"--output={png}", str(svg)], check=True)
        return with_rsvg
    if importlib.util.find_spec("cairosvg") is not None:
        def with_cairosvg(svg: Path, png: Path) -> None:
            import cairosvg
            cairosvg.svg2png(url=str(svg), write_to=str(png))
        return with_cairosvg
    return None


def shrink(png: Path) -> None:
    """Quantise the PNG's colours with pngquant when installed (a third of the size;
    a terminal has few colours anyway)."""
    pngquant = shutil.which("pngquant")
    if pngquant:
        subprocess.run([pngquant, "--force", "--skip-if-larger", "--quality=70-95",
                        "--speed=1", "--output", str(png), str(png)], check=False)


def offline_fonts(svg: str) -> str:
    """Textual's SVG set in a local monospace face sized to its 12.2 px cells, its spaces
    kept.

    The SVG asks for Fira Code (a web font an offline converter cannot load) at 20 px and
    places every run of text at its cell; DejaVu Sans Mono's advance is 0.602 em, so at
    20.26 px a run fills its cells exactly instead of leaving gaps between runs."""
    svg = re.sub(r"@font-face \{.*?\}", "", svg, flags=re.S)
    # librsvg collapses runs of no-break spaces too (indented lines lose their indent).
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    svg = re.sub(r"font-family: *\"?Fira Code\"?[^;]*;", f'font-family: "{FONT}", monospace;',
                 svg)
    return svg.replace("font-size: 20px;", f"font-size: {CELL_WIDTH / FONT_ADVANCE:.2f}px;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-svg", action="store_true",
                        help="also keep the SVGs (docs/*.svg)")
    args = parser.parse_args(argv)
    convert = find_converter()
    if convert is None and not args.keep_svg:
        print("screenshots: no SVG converter: install rsvg-convert (apt-get install "
              "librsvg2-bin) or the cairosvg package", file=sys.stderr)
        return 2
    if convert is not None and shutil.which("pngquant") is None:
        print("screenshots: no pngquant (apt-get install pngquant): the PNGs stay about "
              "three times larger", file=sys.stderr)
    fake_model.reset()
    models = ScriptedModels()
    fake_model.responder = models
    shots: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        project = write_demo(Path(folder) / "coevo-demo.db")
        app = make_app(project, model=MODEL, assistant_model=ASSISTANT, keymap={})
        asyncio.run(walk(app, shots, models))
        for name, svg in shots.items():
            svg_path = (DOCS if args.keep_svg else Path(folder)) / f"{name}.svg"
            svg_path.write_text(offline_fonts(svg), encoding="utf-8")
            if convert is not None:
                convert(svg_path, DOCS / f"{name}.png")
                shrink(DOCS / f"{name}.png")
                size = (DOCS / f"{name}.png").stat().st_size
                print(f"docs/{name}.png  {size // 1024} KB")
    if convert is None:
        print("screenshots: no SVG converter: install rsvg-convert (apt-get install "
              "librsvg2-bin) or the cairosvg package; kept the SVGs only", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
