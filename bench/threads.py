"""How many threads torch computes with: ``--threads``, else ``$BENCH_THREADS``, else a default that holds up on a
busy machine.

Torch's own default, one thread per core, suits a machine with nothing else to do. Where other processes keep
cores busy, each parallel kernel waits for its slowest thread, and a run with every core's thread took 3x
longer than with one (measured on a 2-core machine beside two busy processes). The default therefore counts
the cores that are idle now, sampled over a tenth of a second, and uses that many threads, at least one and
at most :data:`MAX_DEFAULT_THREADS` (small networks gain little from more).
"""

from __future__ import annotations

import math
import os
import time

THREADS_ENV = "BENCH_THREADS"
MAX_DEFAULT_THREADS = 4
_SAMPLE_SECONDS = 0.1


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) clock ticks of all CPUs since boot, from /proc/stat (Linux); None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal


def idle_cores(seconds: float = _SAMPLE_SECONDS) -> float | None:
    """How many of the machine's cores were idle over the next ``seconds`` (None where it cannot tell)."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    share = (after[0] - before[0]) / (after[1] - before[1])
    return share * (os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for a run that did not say: ``$OMP_NUM_THREADS`` where set, else the idle cores now (at least
    one, at most :data:`MAX_DEFAULT_THREADS` and the cores available)."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    cores = available_cores()
    idle = idle_cores()
    usable = cores if idle is None else math.floor(idle + 0.5)
    return max(1, min(MAX_DEFAULT_THREADS, cores, usable))


def resolve_threads(threads: int | None = None) -> int:
    """``threads``, else ``$BENCH_THREADS``, else :func:`default_threads`; ValueError naming a bad value."""
    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if not text:
            return default_threads()
        if not text.isdigit():
            raise ValueError(f"${THREADS_ENV} must be a positive integer, got {text!r}")
        threads = int(text)
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    return threads


def set_threads(threads: int | None = None) -> int:
    """Make torch compute with :func:`resolve_threads` threads, in this process and the processes it starts
    (through ``$BENCH_THREADS`` and ``$OMP_NUM_THREADS``); the number set."""
    import torch

    n = resolve_threads(threads)
    torch.set_num_threads(n)
    os.environ[THREADS_ENV] = os.environ["OMP_NUM_THREADS"] = str(n)
    return n
