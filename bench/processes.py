"""Whether a process of this machine still runs.

On Linux ``/proc/PID/stat`` gives a process's state and start time: a zombie (killed or exited but not yet
reaped by its parent) is dead, though ``os.kill(pid, 0)`` still finds it, and a process id reused by a newer
process is told apart by its start time. Elsewhere ``os.kill(pid, 0)`` is all there is.
"""

from __future__ import annotations

import os

#: States of a process that will run no more: zombie and dead.
_GONE = frozenset("ZXx")


def process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of process ``pid`` from ``/proc``; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name (field 2) may hold spaces and parentheses; the fields after its last ")" do not.
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), to tell a reused process id apart; None where unknown."""
    stat = process_stat(pid)
    return stat[1] if stat else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this machine runs (a zombie does not); with ``started``, whether it is still the
    process that started then."""
    if os.path.isdir("/proc/self"):
        stat = process_stat(pid)
        if stat is None:
            return False
        state, start = stat
        return state not in _GONE and (not started or start == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
