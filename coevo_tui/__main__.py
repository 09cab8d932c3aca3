"""Command line: parse, then either open the TUI through `make_app` or run a headless command.

Every command module is imported lazily, so that `coevo PATH` never waits for litellm.
Errors the user can fix are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from coevo_tui.domain.errors import UserError

COMMANDS = ("demo", "import", "export", "run", "prompt", "versions", "diff", "label", "eval")
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
    _model_options(p)

    p = sub.add_parser("demo", help="write the demo project and open it")
    p.add_argument("path", metavar="PATH", nargs="?", default=DEFAULT_DEMO_PATH)
    p.add_argument("--no-open", action="store_true", help="write the project, do not open it")
    _model_options(p)

    p = sub.add_parser("import", help="add cases from a JSONL or CSV file (all or nothing)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the extension")

    p = sub.add_parser("export", help="write the test set as JSONL, CSV or a promptfoo config")
    p.add_argument("path", metavar="PATH")
    p.add_argument("file", metavar="FILE", help="'-' for standard output")
    p.add_argument("--format", choices=("jsonl", "csv", "promptfoo"),
                   help="default: from the extension")

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
    p.add_argument("--check", action="store_true")
    p.add_argument("--baseline", type=int, metavar="N")
    p.add_argument("--candidate", type=int, metavar="M")
    p.add_argument("--model", metavar="MODEL", help="compare this model's outputs (needed when "
                   "several models answered)")
    return parser


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="litellm model string (or COEVO_MODEL)")
    p.add_argument("--api-base", metavar="URL",
                   help="OpenAI-compatible server (or COEVO_API_BASE)")


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

    app = make_app(path, model=getattr(args, "model", None),
                   api_base=getattr(args, "api_base", None))
    app.run()
    if app.startup_error:
        print(f"coevo: {app.startup_error}", file=sys.stderr)
        return 2
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
    raise AssertionError(command)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(args)
    except UserError as exc:
        print(f"coevo: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("coevo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
