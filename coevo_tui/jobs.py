"""Long work that belongs to the app, not to the screen that started it.

A run of the test set, Compare's run of the revision, and (with the assistant) generating
cases and judging answers take minutes. They must go on when the user leaves the screen
that started them, show their progress on whatever screen is up, stop with one key, end
with a notification, and never run twice. One mechanism does this for all of them:

- A `Job` is the state of one piece of work, updated from the events its core iterator
  yields (for a run: `llm/runner.py`'s RunStarted, CaseFinished, ...). Its `key` says
  what it is doing ("run", version id, model): starting a job whose key is already
  running returns the running one instead of a duplicate.
- `Jobs` (one per app, `app.jobs`) drives each job's events in an app-level worker, so
  leaving a screen does not cancel it, and tells the screens through two Textual
  signals: `events` with every event (for a screen that follows the job's streams) and
  `changed`, coalesced to at most `REFRESHES_PER_SECOND` per job, for progress lines. A
  screen subscribes with `app.jobs.changed.subscribe(self, callback)`; Textual drops the
  subscription when the screen goes away, so nothing is left to unregister.
- When a job ends, `Jobs` notifies once with the job's own closing line.

The assistant's tasks that take long (a batch of candidates, cases similar to one case,
the judge over a version's answers) are `AssistJob`s, started with `start_candidates`,
`start_similar` and `start_judge`, so every screen starts them the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.signal import Signal
from textual.timer import Timer

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from coevo_tui.assist.events import AssistSummary
    from coevo_tui.assist.revision import RevisionDraft
    from coevo_tui.domain.model import Case, Judgement, PromptVersion
    from coevo_tui.llm.runner import RunSummary
    from coevo_tui.session import Session

REFRESHES_PER_SECOND = 8


@dataclass(frozen=True)
class JobEvent:
    """One event of a job, as the `Jobs.events` signal carries it."""

    job: Job
    event: object


class Job:
    """The state of one piece of long work. Subclasses apply their events in `handle` and
    say how far they are in `progress_text` and how they ended in `ending`."""

    #: a short name for the kind of work ("run", "judge", "generate")
    kind = "job"

    def __init__(self, key: Hashable, title: str) -> None:
        self.key = key
        self.title = title
        self.running = True
        self.stopped = False  # ended by the user (or a newer job), not by finishing
        self.failed: BaseException | None = None
        self.worker: Worker[None] | None = None

    def handle(self, event: object) -> None:
        """Apply one event of the core's iterator (before it is published)."""

    def progress_text(self) -> str:
        """A few words for status lines: "run v2 12/54"."""
        state = "" if self.running else (" stopped" if self.stopped else " done")
        return f"{self.title}{state}"

    def ending(self) -> tuple[str, str] | None:
        """(message, severity) for the notification when the job ends; None: say nothing."""
        if self.failed is not None:
            return None  # the app's error path reports it
        verb = "stopped" if self.stopped else "done"
        return f"{self.title[:1].upper()}{self.title[1:]} {verb}.", "information"


class TestSetRun(Job):
    """A run of the test set (or Compare's run of the revision) under `version` with
    `model`: the runner's summary, the cases still to answer, the text streamed so far
    of the cases being answered."""

    __test__ = False  # not a pytest test class, despite the name
    kind = "run"

    def __init__(self, version: PromptVersion, model: str, pending: set[int]) -> None:
        super().__init__(("run", version.id, model), f"run v{version.number}")
        self.version = version
        self.model = model
        self.summary: RunSummary | None = None
        self.pending = pending  # cases still to answer
        self.streams: dict[int, list[str]] = {}  # text so far of the cases being answered

    def handle(self, event: object) -> None:
        from coevo_tui.llm.runner import (
            CaseDelta,
            CaseFinished,
            CaseRestarted,
            CaseStarted,
            RunFinished,
            RunStarted,
        )

        if isinstance(event, CaseDelta):
            self.streams.setdefault(event.case_id, []).append(event.text)
        elif isinstance(event, (CaseStarted, CaseRestarted)):
            self.streams[event.case_id] = []
        elif isinstance(event, CaseFinished):
            self.pending.discard(event.case_id)
            self.streams.pop(event.case_id, None)
        elif isinstance(event, (RunStarted, RunFinished)):
            self.summary = event.summary
            if isinstance(event, RunFinished) and event.summary.halted:
                self.stopped = True

    def progress_text(self) -> str:
        summary = self.summary
        if summary is None:
            return f"{self.title} starting"
        state = "" if self.running else (" stopped" if summary.halted else " done")
        return f"{self.title}{state} {summary.done}/{summary.to_run}"

    def ending(self) -> tuple[str, str] | None:
        summary = self.summary
        if self.failed is not None or summary is None or not summary.to_run:
            return None
        if summary.halted:
            return (f"Run of v{self.version.number} stopped: {summary.done} of "
                    f"{summary.to_run} done. R resumes the unfinished cases.", "information")
        return (f"Run of v{self.version.number} done: {summary.line()}",
                "warning" if summary.errors else "information")


class AssistJob(Job):
    """An assistant task as an app job: `task` is "candidates" (a batch for the review
    queue, under a version), "similar" (cases similar to one case), "judge" (a verdict
    for each unlabelled answer of a version), or "revision" (`RevisionJob`). It keeps the task's live `AssistSummary`,
    the candidates stored so far (`added`) and the verdicts (`judged`, by output id);
    `written` counts the characters of the answer so far, which is all there is to show
    while a slow model writes its first item."""

    TITLES = {"candidates": "generate {}", "similar": "similar to {}", "judge": "judge {}",
              "revision": "draft from {}"}

    def __init__(self, task: str, subject_id: int, subject: str) -> None:
        super().__init__(("assist", task, subject_id), self.TITLES[task].format(subject))
        self.kind = task
        self.task = task
        self.subject = subject
        self.summary: AssistSummary | None = None
        self.added: list[Case] = []
        self.judged: dict[int, Judgement] = {}
        self.written = 0
        # What it does before its first words, said while a slow model is quiet
        # ("extracting the rules of v2 first"); None once the answer flows.
        self.phase: str | None = None
        self.rules_written = 0

    def handle(self, event: object) -> None:
        from coevo_tui.assist.events import (
            AssistFinished,
            AssistStarted,
            AssistText,
            CandidateAdded,
            Judged,
            RulesExtracted,
            RulesText,
        )

        if isinstance(event, AssistText):
            self.written += len(event.text)
            self.phase = None
        elif isinstance(event, RulesText):
            self.rules_written += len(event.text)
            # Short enough for the 80-column progress line.
            self.phase = f"extracting {self.subject}'s rules, {self.rules_written} chars"
        elif isinstance(event, RulesExtracted):
            self.phase = f"{len(event.rules)} rules found; writing cases"
        elif isinstance(event, CandidateAdded):
            self.added.append(event.case)
        elif isinstance(event, Judged):
            self.judged[event.output_id] = event.judgement
        elif isinstance(event, AssistStarted) and event.summary is not None:
            self.summary = event.summary
        elif isinstance(event, AssistFinished):
            self.summary = event.summary
            if event.summary.halted:
                self.stopped = True

    @property
    def arrived(self) -> int:
        """Items the assistant has produced so far (kept, dropped or unusable), or answers
        judged (or failed)."""
        summary = self.summary
        if summary is None:
            return 0
        if self.task == "judge":
            return summary.done + summary.errors
        return summary.generated + summary.unusable

    def progress_text(self) -> str:
        summary = self.summary
        if summary is None:
            return f"{self.title} starting"
        state = "" if self.running else (" stopped" if self.stopped else " done")
        total = "?" if summary.total is None else str(summary.total)
        text = f"{self.title}{state} {self.arrived}/{total}"
        if self.running and not self.arrived:
            if self.written:
                text += f" (writing, {self.written} chars)"
            elif self.phase:
                text += f" ({self.phase})"
        return text

    def ending(self) -> tuple[str, str] | None:
        summary = self.summary
        if self.failed is not None or summary is None:
            return None
        trouble = bool(summary.error or summary.errors)
        if self.task == "judge":
            if not summary.total:
                return f"Nothing to judge under {self.subject}: every answer is labelled " \
                       "or judged already.", "information"
            head = "Judge stopped" if self.stopped else "Judge done"
            hint = " y on Label or Compare accepts a suggestion." if summary.done else ""
            return (f"{head}: {summary.line()}.{hint}",
                    "warning" if trouble else "information")
        kept = summary.kept
        what = "similar case" if self.task == "similar" else "new case"
        if kept:
            head = f"{kept} {what}{'' if kept == 1 else 's'} in the queue: v opens it"
        else:
            head = f"No {what} for the queue"
        if self.stopped and not summary.halted:  # stopped before its summary knew
            head = f"Stopped: {head[:1].lower()}{head[1:]}"
        return f"{head} ({summary.line()})", "warning" if trouble or not kept else \
            "information"


async def start_candidates(jobs: Jobs, session: Session, *, n: int = 10,
                           rule: int | None = None) -> AssistJob:
    """Ask the assistant for a batch of `n` candidates under the newest version (probing
    `rule`, if given), as an app job; the running one if a batch is already coming."""
    from coevo_tui.assist import candidates

    version = await session.store.versions.latest()
    job = AssistJob("candidates", version.id, f"v{version.number}")
    if not await session.store.rules.for_version(version.id):
        job.phase = f"extracting the rules of v{version.number} first"
    return jobs.start(job, candidates.generate(session, n, rule))  # type: ignore[return-value]


async def start_similar(jobs: Jobs, session: Session, case: Case, *, n: int = 5
                        ) -> AssistJob:
    """Ask the assistant for `n` cases similar to `case`, as an app job (the running one
    if that case's are already coming)."""
    from coevo_tui.assist import similar

    job = AssistJob("similar", case.id, case.ext_id)
    return jobs.start(job, similar.generate(session, case.id, n))  # type: ignore[return-value]


class RevisionJob(AssistJob):
    """The assistant drafting the next version: one answer, so no count, only what it has
    written. `draft` is the draft when it came (`draft.error` says why there is none);
    `draft_taken`, whether the Prompt screen has put it in its editor yet."""

    def __init__(self, version: PromptVersion) -> None:
        super().__init__("revision", version.id, f"v{version.number}")
        self.draft: RevisionDraft | None = None
        self.draft_taken = False

    def handle(self, event: object) -> None:
        from coevo_tui.assist.events import RevisionDrafted

        if isinstance(event, RevisionDrafted):
            self.draft = event.draft
        else:
            super().handle(event)

    def progress_text(self) -> str:
        if self.running:
            writing = f"writing, {self.written} chars" if self.written else "asking"
            return f"{self.title} ({writing})"
        return f"{self.title} {'stopped' if self.stopped else 'done'}"

    def ending(self) -> tuple[str, str] | None:
        if self.draft is None:
            return None  # stopped (said by the stop) or failed (said by the app)
        if self.draft.error:
            return f"No draft: {self.draft.error}", "warning"
        return (f"The draft of a revision of {self.subject} is ready: p shows it",
                "information")


def start_revision(jobs: Jobs, session: Session, version: PromptVersion) -> RevisionJob:
    """Have the assistant draft a revision of `version` (the newest) from its bad and
    unsure cases, as an app job (the running one if a draft is being written)."""
    from coevo_tui.assist import revision

    job = RevisionJob(version)
    return jobs.start(job, revision.drafting(session))  # type: ignore[return-value]


def start_judge(jobs: Jobs, session: Session, version: PromptVersion,
                model: str | None) -> AssistJob:
    """Have the judge suggest a verdict for every unlabelled answer of `model` under
    `version`, as an app job (the running one if that version is being judged)."""
    from coevo_tui.assist import judge

    job = AssistJob("judge", version.id, f"v{version.number}")
    return jobs.start(job, judge.judge(session, version, model))  # type: ignore[return-value]


class Jobs:
    """The app's long work (see the module docstring). Create one in the App's
    `on_mount` (signals need a running owner)."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.events: Signal[JobEvent] = Signal(app, "job-event")
        self.changed: Signal[Job] = Signal(app, "job-changed")
        self._jobs: dict[Hashable, Job] = {}
        self._dirty: dict[int, Job] = {}
        self._timer: Timer | None = None

    # ------------------------------------------------------------------ reading
    def get(self, key: Hashable) -> Job | None:
        """The newest job with `key` (running or ended), if any."""
        return self._jobs.get(key)

    def running(self) -> list[Job]:
        """The jobs still going, oldest first."""
        return [job for job in self._jobs.values() if job.running]

    def latest(self, kind: str | None = None) -> Job | None:
        """The most recently started job (of `kind`), running or not."""
        for job in reversed(list(self._jobs.values())):
            if kind is None or job.kind == kind:
                return job
        return None

    def running_run(self, version_id: int, model: str | None = None) -> TestSetRun | None:
        """The run going under `version_id` (with `model`; any model when None), if any."""
        for job in reversed(self.running()):
            if isinstance(job, TestSetRun) and job.version.id == version_id and (
                    model is None or job.model == model):
                return job
        return None

    def running_assist(self, *tasks: str) -> list[AssistJob]:
        """The assistant jobs going (of `tasks`; any task when none is named), oldest
        first."""
        return [job for job in self.running() if isinstance(job, AssistJob)
                and (not tasks or job.task in tasks)]

    def latest_assist(self, *tasks: str) -> AssistJob | None:
        """The assistant job (of `tasks`) started last, running or ended, if any."""
        for job in reversed(list(self._jobs.values())):
            if isinstance(job, AssistJob) and (not tasks or job.task in tasks):
                return job
        return None

    def summary_text(self) -> str:
        """Every running job's progress on one line ("run v2 12/54 · judge v2 3/40")."""
        return " · ".join(job.progress_text() for job in self.running())

    # ------------------------------------------------------------------ starting, stopping
    def start(self, job: Job, events: AsyncIterator[object]) -> Job:
        """Drive `events` into `job` in an app worker and return it, or return the job
        with the same key that is already running (then `events` is closed unused)."""
        existing = self._jobs.get(job.key)
        if existing is not None and existing.running:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                self.app.run_worker(closer(), exit_on_error=False)
            return existing
        self._jobs.pop(job.key, None)
        self._jobs[job.key] = job  # newest last
        job.worker = self.app.run_worker(self._drive(job, events), group="jobs",
                                         exit_on_error=False)
        self._mark(job)
        return job

    def stop(self, job: Job | None = None) -> Job | None:
        """Stop `job` (default: the newest running one); returns the job stopped."""
        if job is None:
            going = self.running()
            job = going[-1] if going else None
        if job is None or not job.running:
            return None
        job.stopped = True
        if job.worker is not None:
            job.worker.cancel()
        return job

    # ------------------------------------------------------------------ driving
    async def _drive(self, job: Job, events: AsyncIterator[object]) -> None:
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    job.handle(event)
                    self.events.publish(JobEvent(job, event))
                    self._mark(job)
        except asyncio.CancelledError:
            job.stopped = True
            raise
        except Exception as exc:  # noqa: BLE001 - reported through the app's error path
            job.failed = exc
        finally:
            job.running = False
            self.changed.publish(job)
            self.events.publish(JobEvent(job, JOB_ENDED))
            if self.app.is_running:
                # A screen that shows the job says how it ended itself (its own words, in
                # its own place); otherwise the app notifies once.
                shows = getattr(self.app.screen, "shows_job", None)
                ending = None if shows is not None and shows(job) else job.ending()
                if ending is not None:
                    message, severity = ending
                    self.app.notify(message, timeout=6,
                                    severity=severity)  # type: ignore[arg-type]
                report = getattr(self.app, "report_error", None)
                if job.failed is not None and report is not None:
                    report(job.failed)

    def _mark(self, job: Job) -> None:
        """Progress changed: publish it at the next tick (coalescing bursts)."""
        self._dirty[id(job)] = job
        if self._timer is None:
            self._timer = self.app.set_interval(1 / REFRESHES_PER_SECOND, self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for job in dirty.values():
            self.changed.publish(job)
        if not dirty and not self.running() and self._timer is not None:
            self._timer.stop()
            self._timer = None


class JobEnded:
    """The last event of every job on the `events` signal (after `running` turned False)."""


JOB_ENDED = JobEnded()
