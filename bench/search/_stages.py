"""Where a run's time goes: CPU and wall seconds per stage (import, ground_truth, data, teacher, scoring, optuna)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

_counted_import = False


def _process_age() -> float | None:
    """Wall seconds since this process started (Linux), None where it cannot tell."""
    try:
        with open("/proc/self/stat") as fh:
            started = int(fh.read().rsplit(")", 1)[1].split()[19])  # clock ticks after boot
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))


@dataclass
class Stages:
    """Accumulated CPU seconds (this process) and wall seconds per named stage."""

    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)

    @classmethod
    def since_process_start(cls, name: str) -> Stages:
        """Stages whose first, ``name``, is everything this process did before now (its imports, parsing the
        command line, checking the settings); counted once per process, so a sweep's later studies start at 0."""
        global _counted_import
        stages = cls()
        age = _process_age()
        if not _counted_import and age is not None:
            stages.add(name, time.process_time(), age)
            _counted_import = True
        return stages

    def add(self, name: str, cpu: float, wall: float) -> None:
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.wall[name] = self.wall.get(name, 0.0) + wall

    @contextlib.contextmanager
    def time(self, name: str, *, less: Sequence[str] = ()) -> Iterator[None]:
        """Add the ``with`` block's time to ``name``, less what the stages in ``less`` gained inside it."""
        inner_cpu = sum(self.cpu.get(s, 0.0) for s in less)
        inner_wall = sum(self.wall.get(s, 0.0) for s in less)
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            nested_cpu = sum(self.cpu.get(s, 0.0) for s in less) - inner_cpu
            nested_wall = sum(self.wall.get(s, 0.0) for s in less) - inner_wall
            self.add(name, time.process_time() - cpu - nested_cpu, time.perf_counter() - wall - nested_wall)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, its calls' time added to ``name``."""

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.time(name):
                return fn(*args, **kwargs)

        return call

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: {"cpu_s": round(self.cpu[name], 3), "wall_s": round(self.wall[name], 3)} for name in self.cpu}
