"""The Prompt screen: edit the instructions, save immutable versions, read history and diffs.

Left, the versions (newest first); right, the editor: the instructions and an optional user
template with `{input}`. `ctrl+s` asks for a note (and which labelled cases motivated the
change) and saves the next version; the store refuses a template without `{input}`, and the
draft stays in the editor.

On the version list: `enter` shows a version read-only, `e` loads it into the editor as the
base of the next version, `m` marks it for a diff, `d` shows the diff (two marked versions;
one marked and the highlighted one; or the highlighted one against its parent). Diff lines
keep their `+`/`-` markers, so they read without colour. `tab` moves between the list and
the editor; `esc` leaves a view, then the screen.

`ctrl+d` asks the assistant to draft a revision of the newest version from its bad and
unsure cases and their rationales: the draft goes into the editor (based on the newest
version) and the screen shows its diff against that version (`esc` returns to the editor,
where the user changes it freely). The draft's summary becomes the note, and the cases it
addresses are ticked as the motivation in the save dialog.

Other screens can open it with a draft (e.g. an assistant's revision)::

    app.open_screen("prompt", instructions=draft, note="...", motivating=[(case_id, label_id)])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    ContentSwitcher,
    Header,
    OptionList,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from coevo_tui.domain.model import CaseState, PromptVersion, Verdict, first_line
from coevo_tui.domain.versiondiff import DiffKind, DiffLine, version_diff
from coevo_tui.jobs import JOB_ENDED, Job, JobEvent, RevisionJob
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.screens.dialogs.save_version import (
    MotivatingChoice,
    SaveRequest,
    SaveVersionScreen,
)
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.status_bar import StatusBar

LIST_TEXT_WIDTH = 22  # the version list's width (styles/prompt.tcss) less its border


@dataclass(frozen=True)
class UnsavedDraft:
    """An edit not saved as a version when the screen was left some other way than esc
    twice (another screen's key, the app quitting): offered again on the next visit."""

    instructions: str
    user_template: str
    base_number: int


# Per project file, for the life of the process: leaving the screen with `c` or `R`
# must not silently throw an edit away.
_UNSAVED: dict[str, UnsavedDraft] = {}


# ---------------------------------------------------------------------- diff view
class VersionDiffView(VerticalScroll):
    """Unified-diff lines coloured by kind through component classes; each line keeps its
    `+`, `-` or space marker, so the diff reads the same with NO_COLOR. Reusable (Compare)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diff--header", "diff--hunk", "diff--added", "diff--removed", "diff--context",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[DiffLine] = []
        self.diff_title = ""

    def compose(self) -> ComposeResult:
        yield Static("", classes="diff-view--body")

    def show_diff(self, title: str, lines: Sequence[DiffLine]) -> None:
        """Show `lines` under `title` (an empty diff says the versions are identical)."""
        self.diff_title = title
        self.lines = list(lines)
        self._render_lines()
        self.scroll_home(animate=False)

    def on_resize(self) -> None:
        if self.lines:
            self._render_lines()

    def _render_lines(self) -> None:
        # Long lines are wrapped here, each piece keeping the line's marker, so a wrapped
        # added line still reads as added without colour.
        width = max(self.scrollable_content_region.width - 1, 20)
        text = Text()
        text.append(self.diff_title + "\n", style="bold underline")
        if not self.lines:
            text.append("The two versions are identical.", style="italic")
        for line in self.lines:
            style = self.get_component_rich_style(f"diff--{line.kind.value}", partial=True)
            if line.kind in (DiffKind.HEADER, DiffKind.HUNK) or len(line.text) <= width:
                pieces = [line.text]
            else:
                marker, body = line.text[:1], line.text[1:]
                size = width - 1
                pieces = [marker + body[i:i + size] for i in range(0, len(body), size)]
            for piece in pieces:
                text.append(piece, style=style)
                text.append("\n")
        self.query_one(".diff-view--body", Static).update(text)


# ---------------------------------------------------------------------- the screen
class PromptScreen(CoevoScreen):
    """Edit the instructions and save versions; browse and diff the history."""

    CSS_PATH = stylesheet("prompt.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save version", id="prompt.save", priority=True),
        # Priority: the editor's own ctrl+d (delete right; `delete` still does it).
        Binding("ctrl+d", "draft_revision", "Draft revision", id="prompt.draft_revision",
                priority=True, tooltip="The assistant drafts a revision from the bad and "
                "unsure cases; it opens in the editor and as a diff"),
        Binding("enter", "view", "View", id="prompt.view", show=False),
        Binding("e", "edit_from", "Edit from", id="prompt.edit_from",
                tooltip="Load the highlighted version into the editor as the next one's base"),
        Binding("m", "mark", "Mark for diff", id="prompt.mark"),
        Binding("d", "diff", "Diff", id="prompt.diff",
                tooltip="Diff the marked versions (or the highlighted one against its parent)"),
        Binding("escape", "back", "Back", id="prompt.back"),
    ]

    def __init__(self, instructions: str | None = None, *, user_template: str | None = None,
                 note: str = "", motivating: Sequence[tuple[int, int | None]] = ()) -> None:
        super().__init__()
        self._draft = instructions
        self._draft_template = user_template
        self._note = note  # kept across a refused save, so it is not typed twice
        self._motivating = tuple(motivating)
        self.versions: list[PromptVersion] = []
        self.base: PromptVersion | None = None
        self.marked: list[int] = []  # version numbers, at most two
        self.mode = "edit"
        self._armed_leave = False
        self._discard = False  # esc twice: the user chose to drop the edit
        self._texts = ("", "")  # (instructions, template) as last edited
        self._draft_job: RevisionJob | None = None  # the assistant writing a revision
        # The motivation came with a draft: only those cases are ticked when saving.
        self._motivating_only = bool(motivating)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Horizontal(id="prompt-body"):
            yield OptionList(id="prompt-versions")
            with ContentSwitcher(initial="prompt-editor", id="prompt-main"):
                with Vertical(id="prompt-editor"):
                    yield Static("Instructions", id="prompt-editor-title")
                    yield TextArea("", id="prompt-instructions", soft_wrap=True,
                                   tab_behavior="focus", show_line_numbers=False)
                    yield Static("User template (optional; must contain {input})",
                                 classes="prompt-label")
                    yield TextArea("", id="prompt-template", soft_wrap=True,
                                   tab_behavior="focus", show_line_numbers=False)
                with VerticalScroll(id="prompt-view"):
                    yield Static("", id="prompt-view-text")
                yield VersionDiffView(id="prompt-diff")
        yield Static("", id="prompt-hint")
        yield StatusBar(id="prompt-status")
        yield CoevoFooter()

    @property
    def instructions_area(self) -> TextArea:
        return self.query_one("#prompt-instructions", TextArea)

    @property
    def template_area(self) -> TextArea:
        return self.query_one("#prompt-template", TextArea)

    @property
    def version_list(self) -> OptionList:
        return self.query_one("#prompt-versions", OptionList)

    @property
    def diff_view(self) -> VersionDiffView:
        return self.query_one("#prompt-diff", VersionDiffView)

    def on_mount(self) -> None:
        self.title = "Prompt"
        self.sub_title = self.app.title
        self.version_list.border_title = "Versions"
        # Focus now, not after loading: a key pressed meanwhile must not be overtaken.
        self.instructions_area.focus()
        self.jobs.events.subscribe(self, self._on_draft_job)
        self.jobs.changed.subscribe(self, self._draft_changed)
        self._load()

    @work(group="prompt-load", exit_on_error=False)
    async def _load(self) -> None:
        self.versions = await self.store.versions.all()
        self.base = self.versions[-1] if self.versions else None
        kept = _UNSAVED.pop(str(self.store.path), None)
        if kept is not None and self._draft is None:
            self.base = next((v for v in self.versions if v.number == kept.base_number),
                             self.base)
            self._draft = kept.instructions
            self._draft_template = kept.user_template
            self.notify("Your unsaved edit is back: ctrl+s saves it, esc twice drops it.",
                        timeout=5)
        self._fill_list()
        instructions = self._draft if self._draft is not None else (
            self.base.instructions if self.base else "")
        template = self._draft_template if self._draft is not None else (
            self.base.user_template if self.base else None)
        self.instructions_area.load_text(instructions)
        self.template_area.load_text(template or "")
        self._texts = (instructions, template or "")
        self._show_editor_title()
        self._show_hint()
        self.refresh_bindings()  # ctrl+d needs the versions: the footer shows it usable now
        if kept is None:  # an unsaved edit that came back is not overwritten by a draft
            self._resume_draft()

    def _fill_list(self, highlight: int | None = None) -> None:
        olist = self.version_list
        keep = highlight if highlight is not None else self._highlighted_number()
        olist.clear_options()
        for version in reversed(self.versions):  # newest first
            olist.add_option(Option(self._version_prompt(version), id=f"v{version.number}"))
        if self.versions:
            numbers = [v.number for v in reversed(self.versions)]
            olist.highlighted = numbers.index(keep) if keep in numbers else 0

    def _version_prompt(self, version: PromptVersion) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        mark = "* " if version.number in self.marked else "  "
        text.append(mark, style="bold")
        text.append(f"v{version.number}", style="bold")
        if self.base is not None and version.number == self.base.number:
            text.append(" (base)", style="italic")
        if version.note:
            # Option lists wrap long prompts: cut the note to the list's width instead.
            room = max(LIST_TEXT_WIDTH - text.cell_len - 1, 0)
            if room >= 4:
                text.append(f" {first_line(version.note, room)}", style="dim")
        return text

    def _highlighted_number(self) -> int | None:
        olist = self.version_list
        if olist.highlighted is None or not olist.option_count:
            return None
        option_id = olist.get_option_at_index(olist.highlighted).id
        return int(option_id[1:]) if option_id else None

    def _highlighted(self) -> PromptVersion | None:
        number = self._highlighted_number()
        return next((v for v in self.versions if v.number == number), None)

    def _show_editor_title(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("Instructions", style="bold")
        if self.base is not None:
            newest = self.versions[-1].number if self.versions else self.base.number
            title.append(f" · editing from v{self.base.number}; ctrl+s saves v{newest + 1}")
        if self._draft is not None:
            title.append(" · a draft", style="italic")
        self.query_one("#prompt-editor-title", Static).update(title)

    def _show_hint(self) -> None:
        hints = {
            "edit": "ctrl+s save as the next version · shift+tab versions · esc back",
            "view": "read-only · e edit from this version · d diff · esc back to the editor",
            "diff": "+ added  - removed · m mark · d diff · esc back to the editor",
        }
        self.query_one("#prompt-hint", Static).update(
            Text(hints[self.mode], no_wrap=True, overflow="ellipsis"))

    def _switch(self, mode: str) -> None:
        self.mode = mode
        target = {"edit": "prompt-editor", "view": "prompt-view", "diff": "prompt-diff"}[mode]
        self.query_one("#prompt-main", ContentSwitcher).current = target
        self._show_hint()
        self.refresh_bindings()

    # ------------------------------------------------------------------ keys
    def _editing_text(self) -> bool:
        return isinstance(self.focused, TextArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "draft_revision":
            return None if self._drafting or not self.versions else True
        if action in ("edit_from", "mark", "diff", "view"):
            # Letters belong to the text areas while one has focus.
            if self._editing_text():
                return False
            return True if self.versions else None
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    @on(OptionList.OptionSelected, "#prompt-versions")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_view()

    def action_view(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        self.query_one("#prompt-view-text", Static).update(self._version_text(version))
        self.query_one("#prompt-view", VerticalScroll).scroll_home(animate=False)
        self._switch("view")
        self._show_provenance(version)

    def _version_text(self, version: PromptVersion) -> Text:
        text = Text()
        text.append(f"Version {version.number}", style="bold underline")
        text.append(f"  (read-only) · {version.created_at[:16].replace('T', ' ')}\n",
                    style="dim")
        if version.parent_id is not None:
            parent = next((v for v in self.versions if v.id == version.parent_id), None)
            if parent is not None:
                text.append(f"after v{parent.number}\n", style="dim")
        text.append("Note: ", style="bold")
        text.append((version.note or "(none)") + "\n\n")
        text.append("Instructions\n", style="bold")
        text.append((version.instructions or "(empty)") + "\n\n")
        text.append("User template\n", style="bold")
        text.append(version.user_template or "(none: the case's input is the user message)")
        return text

    def action_edit_from(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        self.base = version
        self._draft = None
        self.instructions_area.load_text(version.instructions)
        self.template_area.load_text(version.user_template or "")
        self._texts = (version.instructions, version.user_template or "")
        self._fill_list(highlight=version.number)
        self._show_editor_title()
        self._switch("edit")
        self.instructions_area.focus()
        self.notify(f"Editing from v{version.number}; saving makes a new version.", timeout=3)

    def action_mark(self) -> None:
        number = self._highlighted_number()
        if number is None:
            return
        if number in self.marked:
            self.marked.remove(number)
        else:
            self.marked = (self.marked + [number])[-2:]
        self._fill_list(highlight=number)

    def action_diff(self) -> None:
        pair = self._diff_pair()
        if pair is None:
            self.notify("v1 has no earlier version: mark two versions with m, then d.",
                        timeout=4)
            return
        older, newer = pair
        self.diff_view.show_diff(f"Diff v{older.number} → v{newer.number}",
                                 version_diff(older, newer))
        self._switch("diff")

    def _diff_pair(self) -> tuple[PromptVersion, PromptVersion] | None:
        by_number = {v.number: v for v in self.versions}
        chosen = [by_number[n] for n in self.marked if n in by_number]
        current = self._highlighted()
        if len(chosen) == 1 and current is not None and current.number != chosen[0].number:
            chosen.append(current)
        if len(chosen) < 2:
            if current is None:
                return None
            parent = next((v for v in self.versions if v.id == current.parent_id), None)
            if parent is None:
                return None
            chosen = [parent, current]
        older, newer = sorted(chosen[:2], key=lambda v: v.number)
        return older, newer

    def action_back(self) -> None:
        if self.mode != "edit":
            self._switch("edit")
            self.instructions_area.focus()
            return
        if self._has_unsaved_changes() and not self._armed_leave:
            self._armed_leave = True
            self.notify("Unsaved changes: ctrl+s saves them as a version; esc again leaves "
                        "without saving.", severity="warning", timeout=5)
            return
        self._discard = True
        self.app.pop_screen()

    def on_unmount(self) -> None:
        # The text areas are gone by now: use the texts kept on each change.
        if self._discard or self.base is None or not self._has_unsaved_changes():
            return
        instructions, template = self._texts
        _UNSAVED[str(self.store.path)] = UnsavedDraft(instructions, template,
                                                      self.base.number)

    def _has_unsaved_changes(self) -> bool:
        if self.base is None:
            return False
        instructions, template = self._texts
        return (instructions != self.base.instructions
                or template.strip() != (self.base.user_template or "").strip())

    @on(TextArea.Changed)
    def _edited(self, event: TextArea.Changed) -> None:
        self._armed_leave = False
        self._texts = (self.instructions_area.text, self.template_area.text)

    # ------------------------------------------------------------------ saving
    def action_save(self) -> None:
        instructions = self.instructions_area.text
        template = self.template_area.text.strip() or None
        newest = self.versions[-1] if self.versions else None
        if newest is not None and instructions == newest.instructions and (
                template or None) == (newest.user_template or None):
            self.notify(f"No change from v{newest.number}: nothing to save.", timeout=4)
            return
        number = (newest.number if newest else 0) + 1
        # The dialog opens now (the note can be typed straight away); its list of
        # motivating cases loads inside it.
        asked = self.ask(SaveVersionScreen(number, self._motivating_choices(), note=self._note))
        self._save(instructions, template, asked)

    @work(group="prompt-save", exclusive=True, exit_on_error=False)
    async def _save(self, instructions: str, template: str | None,
                    asked: Awaitable[SaveRequest | None]) -> None:
        request = await asked
        if request is None:
            return
        request = cast(SaveRequest, request)
        self._note = request.note
        # The store is the judge of a valid template: a refusal becomes a notification
        # (the app's error path) and the draft, note included, stays for another try.
        version = await self.store.versions.create(instructions, template, request.note,
                                                  request.motivating)
        self._note = ""
        self._motivating = ()
        self._motivating_only = False
        self._draft = None
        self.versions = await self.store.versions.all()
        self.base = version
        self.marked = []
        self._fill_list(highlight=version.number)
        self._show_editor_title()
        self._armed_leave = False
        reasons = len(request.motivating)
        extra = f", motivated by {reasons} case{'s' if reasons != 1 else ''}" if reasons else ""
        self.notify(f"Saved v{version.number}{extra}: {request.note or '(no note)'}",
                    timeout=5)

    async def _motivating_choices(self) -> list[MotivatingChoice]:
        """The bad and unsure cases under the base version (preselected), plus any passed
        in with a draft, as choices for "motivated by"."""
        choices: dict[int, MotivatingChoice] = {}
        store = self.store
        if self.base is not None:
            answers = await store.answers.per_case(self.base.id)
            failing = {cid: a for cid, a in answers.items()
                       if a.label is not None and a.label.verdict in (Verdict.BAD,
                                                                      Verdict.UNSURE)}
            if failing:
                cases = {c.id: c for c in await store.cases.all([CaseState.ACTIVE])}
                for cid, answer in sorted(failing.items()):
                    case = cases.get(cid)
                    label = answer.label
                    if case is None or label is None:
                        continue
                    why = f": {first_line(label.rationale, 30)}" if label.rationale else ""
                    text = f"{case.ext_id} {label.verdict.value}{why} · {first_line(case.input, 30)}"
                    # With a draft's cases, those are the motivation; the others may be
                    # ticked by hand.
                    ticked = not self._motivating_only or any(
                        cid == wanted for wanted, _ in self._motivating)
                    choices[cid] = MotivatingChoice(cid, label.id, text, selected=ticked)
        for cid, label_id in self._motivating:
            if cid not in choices:
                case = await store.cases.get(cid)
                choices[cid] = MotivatingChoice(cid, label_id,
                                                f"{case.ext_id} · {first_line(case.input, 40)}")
        return list(choices.values())

    # ------------------------------------------------------------------ the assistant's draft
    def action_draft_revision(self) -> None:
        if not self._drafting and self.versions:
            from coevo_tui.jobs import start_revision

            self._follow_draft(start_revision(self.jobs, self.session, self.versions[-1]))

    def _follow_draft(self, job: RevisionJob) -> None:
        """Show `job` (the assistant drafting a revision, an app job that goes on if this
        screen is left) in the hint line until it ends, then take its draft."""
        self._draft_job = job
        self._set_drafting(job.running)
        if job.running:
            self._show_draft_progress()
        else:
            self._take_draft(job)

    def _set_drafting(self, drafting: bool) -> None:
        """While the assistant drafts, the editor is read-only (the draft would replace
        what is typed meanwhile) and the focus leaves it, so X stops the draft."""
        self.instructions_area.read_only = drafting
        self.template_area.read_only = drafting
        if drafting and isinstance(self.focused, TextArea):
            self.version_list.focus()
        self.refresh_bindings()

    @property
    def _drafting(self) -> bool:
        return self._draft_job is not None and self._draft_job.running

    def _show_draft_progress(self) -> None:
        job = self._draft_job
        if job is None or not job.running:
            return
        self.query_one("#prompt-hint", Static).update(Text(
            f"assistant: {job.progress_text()} from the bad and unsure cases · X stops",
            no_wrap=True, overflow="ellipsis"))

    def _on_draft_job(self, job_event: JobEvent) -> None:
        job = self._draft_job
        if job is not None and job_event.job is job and job_event.event is JOB_ENDED \
                and self.is_attached:
            self._set_drafting(False)
            self._show_hint()
            self._take_draft(job)
            if self.mode == "edit":
                self.instructions_area.focus()

    def _draft_changed(self, job: Job) -> None:
        if job is self._draft_job:
            self._show_draft_progress()

    def _resume_draft(self) -> None:
        """On opening: follow a draft being written, or take one that came while this
        screen was closed."""
        job = self.jobs.latest_assist("revision")
        if isinstance(job, RevisionJob) and (
                job.running or (job.draft is not None and not job.draft_taken)):
            self._follow_draft(job)

    def shows_job(self, job: Job) -> bool:
        """This screen says itself how a draft ended (the app stays quiet)."""
        return isinstance(job, RevisionJob)

    def _take_draft(self, job: RevisionJob) -> None:
        """Put the job's draft in the editor and show its diff against the version it
        revises (or say why there is none)."""
        self._draft_job = None
        drafted = job.draft
        if drafted is None or job.draft_taken:
            if job.stopped:
                self.notify("Draft stopped: nothing changed.", timeout=5)
            return
        job.draft_taken = True
        if drafted.error:
            self.notify(f"No draft: {drafted.error}", severity="warning", timeout=8)
            return
        newest = next((v for v in self.versions if v.id == job.key[2]), None)
        if newest is None:
            return
        self.base = newest
        self._draft = drafted.instructions
        self._note = drafted.summary
        self._motivating = tuple(drafted.motivating)
        self._motivating_only = True  # the draft's cases, and only those, are ticked
        self.instructions_area.load_text(drafted.instructions)
        self.instructions_area.move_cursor(self.instructions_area.document.end)
        self._texts = (drafted.instructions, self.template_area.text)
        self._fill_list(highlight=newest.number)
        self._show_editor_title()
        draft = dataclasses.replace(newest, number=newest.number + 1,
                                    instructions=drafted.instructions,
                                    user_template=self.template_area.text.strip() or None)
        self.diff_view.show_diff(f"Draft of v{newest.number + 1} (the assistant's) against "
                                 f"v{newest.number}", version_diff(newest, draft))
        self._switch("diff")
        self.diff_view.focus()
        cases = len(drafted.case_ids)
        addressed = f"; it addresses {cases} case{'s' if cases != 1 else ''}" if cases else ""
        problems = len(drafted.problems)
        left_out = (f" ({problems} problem{'s' if problems != 1 else ''} left out)"
                    if problems else "")
        self.notify(f"Drafted v{newest.number + 1}{addressed}{left_out}: esc edits it, "
                    "ctrl+s saves it.", timeout=6)

    # ------------------------------------------------------------------ provenance
    # Added for Compare/Overview: the version view also says which cases (and rationales)
    # motivated the version.
    @work(group="prompt-provenance", exclusive=True, exit_on_error=False)
    async def _show_provenance(self, version: PromptVersion) -> None:
        from coevo_tui.services.overview import read_motivations
        from coevo_tui.widgets.provenance import motivations_text

        found = (await read_motivations(self.store, [version]))[version.id]
        text = self._version_text(version)
        text.append("\n\n")
        text.append_text(motivations_text(found))
        self.query_one("#prompt-view-text", Static).update(text)
