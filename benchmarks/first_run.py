"""A new user's first minutes, measured: the listings, a cold single-architecture score, and the default run from a
cold start on a quiet machine and beside two busy processes, in one go.

    python benchmarks/first_run.py [--n-trials 100] [--threads N] [--skip-listings]

Every command runs as a user types it (``python -m bench ...``), in a fresh folder with an empty decode cache
(``$BENCH_CACHE_DIR``) and an empty score cache. The default run is
``bench run --space nb201 --proxy diswot --sampler nsga2``: first on the machine as it is, then beside two
processes that each keep a core busy (started and stopped here). For each, the CPU seconds and wall seconds of
its stages (import, ground truth, data, teacher, scoring, optuna; from the run's manifest, and "other" for the
rest of the process: writing the run folder, exiting) and the ratio of the two wall times. ``--threads``
passes a thread count to both runs instead of the default. Other work on the machine counts against "quiet":
the script prints the load average beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--space", "nb201", "--proxy", "diswot", "--sampler", "nsga2", "--no-progress"]
STAGES = ("import", "ground_truth", "data", "teacher", "scoring", "optuna")
console = Console()


def bench(args: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``bench ARGS`` in ``folder``: (wall seconds, CPU seconds of the process, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bench {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


@contextlib.contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """``n`` processes that each keep a core busy, for the duration of the block."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0)  # let them settle on their cores
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def fresh_env(folder: Path, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CACHE_DIR": str(folder / "decode-cache")}
    env.setdefault("BENCH_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
    for name in ("BENCH_THREADS", "OMP_NUM_THREADS"):  # the default is what is measured, unless --threads
        env.pop(name, None)
    if threads is not None:
        env["BENCH_THREADS"] = str(threads)
    return env


def default_run(base: Path, name: str, n_trials: int, threads: int | None) -> dict:
    folder = base / name
    folder.mkdir()
    wall, cpu, _ = bench([*RUN, "--n-trials", str(n_trials)], folder, fresh_env(folder, threads))
    (manifest,) = folder.glob("results/*/manifest.json")
    record = json.loads(manifest.read_text())["runs"][-1]
    return {"wall": wall, "cpu": cpu, "stages": record["stages"], "threads": record["device"]["torch_threads"]}


def stage_table(runs: dict[str, dict]) -> Table:
    table = Table("stage", *(f"{name} {what}" for name in runs for what in ("CPU-s", "wall s")), title="bench run")
    for stage in STAGES:
        cells = []
        for run in runs.values():
            figures = run["stages"].get(stage, {"cpu_s": 0.0, "wall_s": 0.0})
            cells += [f"{figures['cpu_s']:.2f}", f"{figures['wall_s']:.2f}"]
        table.add_row(stage, *cells)
    other = []
    for run in runs.values():
        other += [
            f"{run['cpu'] - sum(s['cpu_s'] for s in run['stages'].values()):.2f}",
            f"{run['wall'] - sum(s['wall_s'] for s in run['stages'].values()):.2f}",
        ]
    table.add_row("other (outputs, exit)", *other)
    table.add_row("[bold]total", *(f"[bold]{v:.2f}" for run in runs.values() for v in (run["cpu"], run["wall"])))
    table.add_row("torch threads", *(str(v) for run in runs.values() for v in (run["threads"], "")))
    return table


def listings(base: Path) -> Table:
    folder = base / "listings"
    folder.mkdir()
    env = fresh_env(folder, None)
    table = Table("command", "CPU-s", "wall s", title="listings")
    for args in (["--help"], ["spaces"], ["proxies"], ["arch", "6111"]):
        bench(args, folder, env)  # once to fill the derived ground-truth rows of the cache folder
        wall, cpu, _ = bench(args, folder, env)
        table.add_row("bench " + " ".join(args), f"{cpu:.2f}", f"{wall:.2f}")
    return table


def cold_score(base: Path) -> Table:
    folder = base / "score"
    folder.mkdir()
    args = ["score", "--proxy", "diswot", "--arch", "6111", "--out", "s.csv"]
    wall, cpu, _ = bench(args, folder, fresh_env(folder, None))
    table = Table("command", "CPU-s", "wall s", title="cold single-architecture score (empty decode cache)")
    table.add_row("bench " + " ".join(args), f"{cpu:.2f}", f"{wall:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=100, help="Trials of the default run (its default: 100).")
    parser.add_argument("--threads", type=int, default=None, help="Threads for both runs (default: bench's own).")
    parser.add_argument("--skip-listings", action="store_true", help="Only the runs.")
    args = parser.parse_args()
    console.print(
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start; python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if not args.skip_listings:
            console.print(listings(base))
            console.print(cold_score(base))
        runs = {"quiet": default_run(base, "quiet", args.n_trials, args.threads)}
        load = os.getloadavg()[0]
        with busy_cores(2):
            runs["busy"] = default_run(base, "busy", args.n_trials, args.threads)
    console.print(stage_table(runs))
    ratio = runs["busy"]["wall"] / runs["quiet"]["wall"]
    console.print(
        f"quiet run: {runs['quiet']['wall']:.1f} s wall (load average {load:.2f} after it); beside two busy "
        f"processes: {runs['busy']['wall']:.1f} s wall, {ratio:.2f}x the quiet run"
    )


if __name__ == "__main__":
    main()
