"""Which process owns something in a project (a run, a project being created), and whether
that process is gone.

Two shells may legitimately work on one project at once, so "running" in the file only
means "its process said so and has not said otherwise". To tell a run that is going on in
another shell from one whose process was killed, a run records its owner: the host, the
process id, and the process's start time (so a process id reused by an unrelated process
after a reboot or a wrap-around is not mistaken for the owner). Only owners on this host
can be judged; anything else is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, named well enough to tell later whether it still runs."""

    host: str
    pid: int
    started: str | None  # boot id and start time in clock ticks, None where /proc is missing

    def is_gone(self) -> bool:
        """True only when this process certainly no longer runs: it was on this host and
        its id is free, a zombie, or taken by a process started at another time."""
        if self.host != this_host():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # another user's process: it exists
        state, started = _proc_stat(self.pid)
        if state == "Z":  # killed, not yet reaped: it runs nothing any more
            return True
        return self.started is not None and started is not None and started != self.started


def this_host() -> str:
    """This machine's name, as recorded in owners."""
    return socket.gethostname()


def this_process() -> ProcessIdentity:
    """The identity of the calling process."""
    pid = os.getpid()
    return ProcessIdentity(this_host(), pid, _proc_stat(pid)[1])


def _proc_stat(pid: int) -> tuple[str | None, str | None]:
    """(state, boot id + start time) of `pid` from /proc, or Nones where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None, None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None, None
    return fields[0], f"{_boot_id()}/{fields[19]}"


def _boot_id() -> str:
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id",
                                            encoding="ascii") as f:
        return f.read().strip()
    return ""
