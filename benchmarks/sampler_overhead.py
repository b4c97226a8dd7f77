"""The samplers' own cost per trial once scores are cached, and the wall time of the bare ``bench run``.

    python benchmarks/sampler_overhead.py --trials 1000 --gp-trials 200 [--bare]

For each registered sampler, a NAS-Bench-201 study of ``--trials`` trials runs twice with one seed
through the real objective (scorer, score cache, ground-truth attributes): the first pass fills the
cache, the second, identical one finds every score there and is the one measured. It prints, per
trial, the time spent inside the sampler (all its Optuna hooks, relative and independent sampling,
timed by a wrapper), the rest of the trial (storage, the cache lookup, the trial's attributes, Optuna's
bookkeeping) and their sum. ``--bare`` also times ``bench run --space nb201 --proxy diswot --sampler nsga2``
as a user types it, in a fresh folder with an empty cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from rich.console import Console
from rich.table import Table

from bench.search import SAMPLERS, RunConfig, start_worker, trial_result


class TimedSampler(BaseSampler):
    """Delegates every hook to ``inner`` and adds up the seconds spent there."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def infer_relative_search_space(self, study, trial):
        return self._timed("infer_relative_search_space", study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._timed("sample_relative", study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._timed("sample_independent", study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        return self._timed("before_trial", study, trial)

    def after_trial(self, study, trial, state, values):
        return self._timed("after_trial", study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def measure(sampler: str, trials: int, cache: str, storage: str, work: Path) -> dict[str, float]:
    results: dict[str, Any] = {}
    archs: dict[str, list[str]] = {}
    for attempt in ("fill", "cached"):
        config = RunConfig(
            proxy="params", sampler=sampler, n_trials=trials, objectives=("score",), cache=cache,
            study_name=f"{sampler}-{attempt}",
        ).resolved()  # fmt: skip
        where = storage if storage == "memory" else str(work / f"{sampler}-{attempt}.log")
        worker = start_worker(config, storage=where, out_dir=work, device="cpu")
        timed = TimedSampler(worker.study.sampler)
        worker.study.sampler = timed
        start = time.perf_counter()
        loop = worker.run()
        wall = time.perf_counter() - start
        records = [trial_result(t) for t in worker.study.get_trials(deepcopy=False)]
        results = {
            "trials": len(loop.trials),
            "cached": sum(r["cached"] for r in records) / len(records),
            "sampler_ms": 1e3 * timed.seconds / trials,
            "total_ms": 1e3 * wall / trials,
            "rest_ms": 1e3 * (wall - timed.seconds) / trials,
            "wall_s": wall,
        }
        archs[attempt] = [r["arch"] for r in records]
    if archs["cached"] != archs["fill"]:
        raise RuntimeError(f"sampler {sampler!r} did not repeat its trials with the same seed")
    return results


def bare_run(work: Path) -> float:
    """Seconds of the bare command, in a fresh folder (empty cache, new study)."""
    folder = work / "bare"
    folder.mkdir()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench", "run", "--space", "nb201", "--proxy", "diswot", "--sampler", "nsga2",
         "--no-progress"],
        cwd=folder, check=True, env={**os.environ},
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--gp-trials", type=int, default=200, help="the GP refits each trial: fewer by default")
    parser.add_argument("--samplers", default=",".join(SAMPLERS.names()))
    parser.add_argument("--storage", choices=("memory", "journal"), default="memory")
    parser.add_argument("--bare", action="store_true", help="also time the bare bench run")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    console = Console()
    table = Table(
        "sampler", "trials", "cached", "sampler ms/trial", "rest ms/trial", "total ms/trial", "wall s",
        title=f"Per-trial cost with cached scores ({args.storage} storage)",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = f"sqlite:///{work / 'scores.db'}"
        for name in args.samplers.split(","):
            trials = args.gp_trials if name == "gp" else args.trials
            r = measure(name, trials, cache, args.storage, work)
            table.add_row(
                name, f"{r['trials']}", f"{r['cached']:.0%}", f"{r['sampler_ms']:.2f}", f"{r['rest_ms']:.2f}",
                f"{r['total_ms']:.2f}", f"{r['wall_s']:.1f}",
            )  # fmt: skip
            console.print(f"{name}: {trials} trials measured")
        console.print(table)
        if args.bare:
            seconds = bare_run(work)
            console.print(f"bare `bench run --space nb201 --proxy diswot --sampler nsga2`: {seconds:.1f} s wall")
    import torch

    console.print(f"device: cpu, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores visible")


if __name__ == "__main__":
    main()
