"""Command line: parse, then either open the TUI through `make_app` or run a headless command.

Every command module is imported lazily, so that `coevo PATH` never waits for litellm.

`main` is the one error boundary: whatever a command raises becomes one line on stderr
and an exit status (domain/errors.py lists them): 2 for bad input, 3 when the machine
refuses (disk full, read-only, I/O error, out of memory), 130 for Ctrl-C, 70 for a bug
("internal error ... (please report)"). While a command runs, nothing else reaches the
terminal: Python warnings are ignored, and exceptions in threads, in callbacks of the
event loop and in finalizers are kept out of sight. COEVO_DEBUG=1 shows all of them,
with tracebacks, for a bug report.
"""

from __future__ import annotations

# Only light modules here: a Ctrl-C while Python imports the rest (asyncio alone takes a
# tenth of a second) must already be inside main's boundary, not before it.
import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

COMMANDS = ("demo", "import", "export", "run", "prompt", "versions", "diff", "label", "eval",
            "generate", "candidates", "judge", "rules")
DEFAULT_DEMO_PATH = "coevo-demo.db"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a hint), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="coevo",
        description="Refine an LLM's instructions and grow its test set in one loop.",
        epilog="Open a project: coevo PATH (created if it does not exist).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("open", help="open (or create) a project in the TUI")
    p.add_argument("path", metavar="PATH")
    _model_options(p, assistant=True)

    p = sub.add_parser("demo", help="write the demo project and open it")
    p.add_argument("path", metavar="PATH", nargs="?", default=DEFAULT_DEMO_PATH)
    p.add_argument("--no-open", action="store_true", help="write the project, do not open it")
    _model_options(p, assistant=True)

    p = sub.add_parser("import", help="add cases from a JSONL or CSV file (all or nothing)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the extension")

    p = sub.add_parser("export", help="write the test set as JSONL, CSV or a promptfoo config")
    p.add_argument("path", metavar="PATH")
    p.add_argument("file", metavar="FILE", help="'-' for standard output; for promptfoo, "
                   "a folder gets promptfooconfig.yaml and tests.yaml")
    p.add_argument("--format", choices=("jsonl", "csv", "promptfoo"),
                   help="default: from the extension")
    p.add_argument("--versions", metavar="N,M",
                   help="promptfoo: the prompt versions to compare (default: the newest)")

    p = sub.add_parser("run", help="run every active case through the model, headless")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--version", type=int, metavar="N", help="prompt version (default: newest)")
    p.add_argument("--concurrency", type=int, metavar="C", default=None,
                   help="calls at once (default 8)")
    p.add_argument("--no-cache", action="store_true", help="call the model even when cached")
    _model_options(p)

    p = sub.add_parser("prompt", help="save the next prompt version from files")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--file", required=True, metavar="INSTRUCTIONS.txt")
    p.add_argument("--template", metavar="TEMPLATE.txt", help="user template with {input}")
    p.add_argument("--note", required=True, metavar="TEXT")

    p = sub.add_parser("versions", help="list the prompt versions")
    p.add_argument("path", metavar="PATH")

    p = sub.add_parser("diff", help="print the diff between two prompt versions")
    p.add_argument("path", metavar="PATH")
    p.add_argument("a", type=int, metavar="A")
    p.add_argument("b", type=int, metavar="B")

    p = sub.add_parser("label", help="label one output good, bad or unsure")
    p.add_argument("path", metavar="PATH")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("version", type=int, metavar="VERSION")
    p.add_argument("verdict", choices=("good", "bad", "unsure"))
    p.add_argument("--rationale", metavar="TEXT", default="")
    p.add_argument("--model", metavar="M")

    p = sub.add_parser("eval", help="report fixed and regressed cases; exit 1 on a regression")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--check", action="store_true", help="exit 1 if a case regressed")
    p.add_argument("--baseline", type=int, metavar="N",
                   help="the older version (default: the revision's parent)")
    p.add_argument("--revision", type=int, metavar="M",
                   help="the version checked against the baseline (default: the newest; "
                   "--candidate M, its old name, still works but is deprecated)")
    # The old name of --revision, kept so that existing scripts keep working.
    p.add_argument("--candidate", type=int, dest="revision", help=argparse.SUPPRESS)
    p.add_argument("--model", metavar="MODEL", help="compare this model's outputs (needed when "
                   "several models answered and none is the model under test)")

    p = sub.add_parser("generate", help="ask the assistant for candidate cases (the review queue)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--n", type=int, metavar="N",
                   help="how many (default 10; 5 with --similar-to)")
    p.add_argument("--rule", type=int, metavar="K", help="all probing rule K of the newest version")
    p.add_argument("--similar-to", metavar="CASE_ID", help="variants of this case instead")
    _model_options(p, assistant=True)

    p = sub.add_parser("candidates", help="list, accept or reject candidate cases")
    p.add_argument("path", metavar="PATH")
    p.add_argument("action", nargs="?", default="list", choices=("list", "accept", "reject"))
    p.add_argument("ids", nargs="*", metavar="IDS", help="case ids, or all")

    p = sub.add_parser("rules", help="a version's policy rules and how the cases cover them")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--version", type=int, metavar="N", help="prompt version (default: newest)")
    p.add_argument("--extract", action="store_true",
                   help="ask the assistant for the rules again (they replace the stored ones)")
    p.add_argument("--assign", action="store_true",
                   help="point each active case that probes no rule at the one it tests")
    _model_options(p, assistant=True)

    p = sub.add_parser("judge", help="the assistant's verdict on every unlabelled answer")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--version", type=int, metavar="N", help="prompt version (default: newest)")
    p.add_argument("--concurrency", type=int, metavar="C", default=None,
                   help="calls at once (default 8)")
    _model_options(p, assistant=True)
    return parser


def _model_options(p: argparse.ArgumentParser, *, assistant: bool = False) -> None:
    p.add_argument("--model", metavar="M", help="litellm model string (or COEVO_MODEL)")
    p.add_argument("--api-base", metavar="URL",
                   help="OpenAI-compatible server (or COEVO_API_BASE)")
    if assistant:
        p.add_argument("--assistant-model", metavar="M",
                       help="the assistant's model (default: the project's, "
                            "COEVO_ASSISTANT_MODEL, then the model under test)")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    # `coevo PATH` is the common case: route it to the hidden `open` command.
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS and argv[0] != "open":
        argv.insert(0, "open")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        parser.exit(2)
    return args


def open_tui(path: Path, args: argparse.Namespace) -> int:
    from coevo_tui.store.project_file import check_project_file

    check_project_file(path)  # refuse bad files before the screen is taken over
    from coevo_tui.app import make_app
    from coevo_tui.cli_process import ordinary_interrupts

    app = make_app(path, model=getattr(args, "model", None),
                   api_base=getattr(args, "api_base", None),
                   assistant_model=getattr(args, "assistant_model", None))
    with ordinary_interrupts():
        app.run()
    if app.crash is not None:  # the terminal is restored by now: the boundary says it
        raise app.crash
    if app.startup_error:
        _say(app.startup_error)
        return app.return_code or 2
    return app.return_code or 0


def dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "open":
        return open_tui(Path(args.path), args)
    if command == "demo":
        from coevo_tui.commands import demo

        path = demo.write_demo(Path(args.path))
        if args.no_open:
            print(f"demo project ready at {path}")
            return 0
        return open_tui(path, args)
    if command in ("import", "export"):
        from coevo_tui.commands import transfer

        return transfer.main(args)
    if command == "run":
        from coevo_tui.commands import run

        return run.main(args)
    if command in ("prompt", "versions", "diff"):
        from coevo_tui.commands import prompt

        return prompt.main(args)
    if command == "label":
        from coevo_tui.commands import label

        return label.main(args)
    if command == "eval":
        from coevo_tui.commands import evaluate

        return evaluate.main(args)
    if command == "generate":
        from coevo_tui.commands import generate

        return generate.main(args)
    if command == "candidates":
        from coevo_tui.commands import candidates

        return candidates.main(args)
    if command == "judge":
        from coevo_tui.commands import judge

        return judge.main(args)
    if command == "rules":
        from coevo_tui.commands import rules

        return rules.main(args)
    raise AssertionError(command)


# 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe: the reader
# went away (`coevo eval ... | head -1`), so the command did not finish.
EXIT_BROKEN_PIPE = 141
DEBUG_VARIABLE = "COEVO_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's arguments); return its exit status.

    Called without `argv` it is the process's entry point, and the quiet settings stay in
    place to its end (the interpreter's shutdown, too, must not print); with `argv`
    (tests, embedding) they are undone on return."""
    debug = os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        from coevo_tui.cli_process import command_process

        with command_process(debug=debug, restore=argv is not None) as interrupts:
            args = parse(sys.argv[1:] if argv is None else argv)
            try:
                status = dispatch(args)
                if interrupts.count:  # the command stopped early but said nothing
                    raise KeyboardInterrupt
            except BaseException as exc:  # noqa: BLE001 - the one boundary
                if isinstance(exc, SystemExit):
                    raise
                status = _report(exc, args, debug)
            return _flush_stdout(status)
    # Only while coevo is still starting (or failing to): nothing was done yet. The
    # statuses are written out here, as importing them is one of the things that can fail.
    except KeyboardInterrupt:
        _say("interrupted")
        return 130  # EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a broken installation, say
        _say(f"internal error: {type(exc).__name__}: {exc} (please report)")
        return 70  # EXIT_INTERNAL


def _report(exc: BaseException, args: argparse.Namespace, debug: bool) -> int:
    """Print the one line for a command's failure; return its exit status."""
    import asyncio
    import traceback

    from coevo_tui.domain.errors import (
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
        EXIT_STORAGE,
        UserError,
    )
    from coevo_tui.store.faults import storage_error_in

    exc = _innermost(exc)
    kept = what_is_kept(args)
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        _say(f"interrupted; {kept}")
        return EXIT_INTERRUPTED
    if isinstance(exc, UserError):
        _say(str(exc))
        return exc.exit_status
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    refusal = storage_error_in(exc, getattr(args, "path", None), kept)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if refusal is not None:
        _say(str(refusal))
        return EXIT_STORAGE
    _say(f"internal error: {type(exc).__name__}: {_short(_redacted(str(exc)))} "
         f"(please report; {DEBUG_VARIABLE}=1 shows the details)")
    return EXIT_INTERNAL


def what_is_kept(args: argparse.Namespace) -> str:
    """What a command stopped half-way leaves behind, for the end of its one line."""
    command = args.command
    if command == "import":
        return "nothing was imported"
    if command == "export":
        return ("standard output holds part of the export" if args.file == "-"
                else "nothing was exported")
    if command == "run":
        return "the answers that arrived are saved; coevo run again runs the rest"
    if command in ("eval", "versions", "diff"):
        return "nothing was changed"
    if command == "demo":
        return "no half-written demo project was left"
    if command == "generate":
        return "the candidates printed are kept in the queue"
    if command == "judge":
        return "the verdicts stored are kept; coevo judge again judges the rest"
    if command == "candidates":
        return "nothing was changed"
    if command == "rules":
        return "the rules and the cases' rules stored are kept"
    return "what was shown as done is kept"


def _innermost(exc: BaseException) -> BaseException:
    """The exception that says what happened: an interrupt first, then a user error, from
    inside an exception group (asyncio's TaskGroup raises those)."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    from coevo_tui.domain.errors import UserError

    for kind in (KeyboardInterrupt, UserError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if leaves else exc


def _say(message: str) -> None:
    """Print coevo's one line on stderr."""
    # A name with a newline in it (from any message) must not make a second line.
    try:
        from coevo_tui.domain.errors import shown_name

        message = shown_name(message)
    except Exception:  # noqa: BLE001 - coevo itself cannot be imported
        message = message.replace("\n", "\\n")
    with contextlib.suppress(OSError, ValueError):
        print(f"coevo: {message}", file=sys.stderr, flush=True)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _redacted(text: str) -> str:
    """`text` without secrets from the environment (a provider's error may echo a key)."""
    try:
        from coevo_tui.llm.client import redact_secrets

        return redact_secrets(text)
    except Exception:  # noqa: BLE001 - the error path must not fail
        return text


def _silence_stdout() -> None:
    """The reader of standard output went away: send what is still buffered nowhere, so
    the interpreter's final flush does not complain."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _flush_stdout(status: int) -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE if status == 0 else status
    except (OSError, ValueError):
        pass
    return status


if __name__ == "__main__":
    sys.exit(main())
