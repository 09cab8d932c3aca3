"""The command-line process's settings while a command runs: quiet, and stopped by Ctrl-C.

The error boundary (coevo_tui/__main__.py) turns a command's failure into one line; this
module keeps everything else off the terminal and makes the first Ctrl-C stop any
command:

- Python warnings are ignored (whatever PYTHONWARNINGS or -W ask for); exceptions that
  die in threads (threading.excepthook), in finalizers (sys.unraisablehook) or in
  event-loop callbacks, and log records no handler takes, are dropped. The command's own
  failure has its line already; these would only print tracebacks under it.
- Ctrl-C: asyncio.run's own handling only asks the main task to stop, which does nothing
  while the loop's thread is stuck in a blocking call (a write to a pipe nobody reads,
  a slow disk), so the first Ctrl-C was not always enough. Here, a Ctrl-C that finds the
  loop waiting (or inside asyncio or a library) cancels the main task as asyncio.run
  would, so its clean-up runs in order; one that finds coevo's own code running raises
  KeyboardInterrupt right there, which also ends a blocking call; a second one always
  raises.
- An event loop that has closed ignores results handed back to it late by a worker thread
  (aiosqlite's, when an interrupted command ends while a query is still finishing),
  instead of that thread dying with "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

_PACKAGE = str(Path(__file__).parent)


class _CommandLoop(asyncio.SelectorEventLoop):
    """The event loop of a command: knows its main task (the first one created, which is
    asyncio.run's) and ignores results handed back after it closed."""

    main_task: asyncio.Task[Any] | None = None

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = super().create_task(coro, **kwargs)
        if self.main_task is None:
            self.main_task = task
        return task

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,
                             context: Any = None) -> Any:
        if self.is_closed():  # a worker thread finishing after the command ended
            return None
        return super().call_soon_threadsafe(callback, *args, context=context)


class _CommandLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every event loop the command makes (each asyncio.run) is a `_CommandLoop`, which
    drops failed callbacks' reports when `quiet`."""

    def __init__(self, quiet: bool) -> None:
        super().__init__()
        self._quiet = quiet

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = _CommandLoop()
        if self._quiet:
            loop.set_exception_handler(_ignore_loop_error)
        return loop


class Interrupts:
    """The SIGINT handler of a command (see the module's docstring); `count` says how many
    Ctrl-C arrived, so that a command that ends normally after one is still reported as
    interrupted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise KeyboardInterrupt from None
        task = getattr(loop, "main_task", None)
        if (self.count == 1 and task is not None and not task.done()
                and not _in_coevo_code(frame)):
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake the loop if it is waiting
            return
        raise KeyboardInterrupt


def _in_coevo_code(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_PACKAGE)


@contextlib.contextmanager
def command_process(*, debug: bool, restore: bool = True) -> Iterator[Interrupts]:
    """Quiet output and Ctrl-C handling (see the module's docstring) while in force;
    yields the `Interrupts` counter. With `debug`, warnings and the dropped exceptions are
    printed as Python would. `restore` undoes everything at the end (tests, embedding);
    the `coevo` process keeps it to its end, so that its shutdown stays quiet too."""
    interrupts = Interrupts()
    with contextlib.ExitStack() as undo:
        if restore:
            undo.enter_context(warnings.catch_warnings())
            undo.callback(asyncio.set_event_loop_policy, asyncio.get_event_loop_policy())
            # Commands set process-wide switches in the environment (run and eval --check
            # route litellm's OpenAI calls through its own handler): not past their end.
            undo.callback(_restore_environment, dict(os.environ))
        asyncio.set_event_loop_policy(_CommandLoopPolicy(quiet=not debug))
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, interrupts)
            if restore:
                undo.callback(signal.signal, signal.SIGINT, previous)
        if not debug:
            warnings.simplefilter("ignore")  # first in the list: wins over -W and the env
            if restore:
                undo.callback(setattr, threading, "excepthook", threading.excepthook)
                undo.callback(setattr, sys, "unraisablehook", sys.unraisablehook)
                undo.callback(setattr, logging, "lastResort", logging.lastResort)
            threading.excepthook = _ignore
            sys.unraisablehook = _ignore
            logging.lastResort = logging.NullHandler()  # type: ignore[assignment]
        yield interrupts


@contextlib.contextmanager
def ordinary_interrupts() -> Iterator[None]:
    """Python's own Ctrl-C handling, for the TUI: in its raw terminal mode Ctrl-C is a key,
    and a SIGINT sent from outside is best left to Textual's asyncio.run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _restore_environment(saved: dict[str, str]) -> None:
    """Put `os.environ` back as it was in `saved`."""
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _ignore(_info: object) -> None:
    """Swallow a thread's or a finalizer's exception (see `command_process`)."""


def _ignore_loop_error(_loop: asyncio.AbstractEventLoop, _context: dict[str, Any]) -> None:
    """Swallow an event loop's report of a failed callback (see `command_process`)."""
