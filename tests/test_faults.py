"""Faults injected into real runs: journals cut short, a worker killed and left unreaped, a damaged score cache.

Marked ``faults``: ``nox -s faults`` runs them (CI too). The PostgreSQL case needs ``BENCH_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.processes import process_stat
from bench.search import RunConfig, open_storage, start_worker

from . import test_search_workers as workers
from .test_search_workers import COUNTED, TIMEOUT, finish, spawn, trials_of

pytestmark = pytest.mark.faults
# The storages of the multi-worker tests: a journal file, or a fresh PostgreSQL database named postgresql://...
postgres_url = workers.postgres_url
storage = workers.storage
REPO = Path(__file__).resolve().parents[1]


def _bench(cwd: Path, *args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bench", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip


def _run_args(n_trials: int, cache: str, out: Path) -> list[object]:
    return ["run", "--proxy", "params", "--sampler", "random", "--n-trials", n_trials, "--study-name", "cut",
            "--device", "cpu", "--no-progress", "--cache", cache, "--out", out]  # fmt: skip


def _study(journal: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(str(journal)).storage).get_trials()


def _mid_record(whole: bytes, offset: int) -> int:
    """``offset`` moved off a record boundary (a cut there leaves no partial record)."""
    while offset <= 0 or whole[offset - 1 : offset] == b"\n":
        offset += 1
    return offset


def test_a_journal_cut_at_any_offset_loses_at_most_its_last_record(tmp_path: Path) -> None:
    n_trials = 12
    cache = f"sqlite:///{tmp_path}/s.db"
    full = tmp_path / "full.log"
    # The finished run in a process of its own, as a crash leaves it: its trials name a worker that is gone.
    first = _bench(tmp_path, *_run_args(n_trials, cache, tmp_path / "run"), "--storage", full)
    assert first.returncode == 0, first.stderr
    config = RunConfig(proxy="params", sampler="random", n_trials=n_trials, study_name="cut", cache=cache).resolved()
    whole = full.read_bytes()
    offsets = sorted({_mid_record(whole, int(len(whole) * f)) for f in (0.001, 0.2, 0.5, 0.8, 0.97)} | {len(whole) - 2})
    for offset in offsets:
        journal = tmp_path / f"cut-{offset}.log"
        journal.write_bytes(whole[:offset])
        kept = whole[: whole.rfind(b"\n", 0, offset) + 1]
        start_worker(config, storage=str(journal), out_dir=tmp_path / "out", device="cpu").run()
        assert journal.read_bytes().startswith(kept), f"cut at {offset}: a whole record was lost"
        side = journal.with_name(journal.name + ".partial")
        assert side.read_bytes() == whole[len(kept) : offset] + b"\n"
        trials = _study(journal, "cut")
        assert sum(t.state in COUNTED for t in trials) == n_trials, f"cut at {offset}"
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_bench_run_on_a_cut_journal_says_so_in_one_line_and_goes_on(tmp_path: Path) -> None:
    args = _run_args(8, f"sqlite:///{tmp_path}/s.db", tmp_path / "run")
    first = _bench(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "run" / "journal.log"
    whole = journal.read_bytes()
    journal.write_bytes(whole[: _mid_record(whole, len(whole) - 40)])
    again = _bench(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    said = [line for line in again.stderr.splitlines() if "partial record" in line]
    assert len(said) == 1 and str(journal) in said[0] and "journal.log.partial" in said[0], again.stderr
    assert "Traceback" not in again.stderr
    assert sum(t.state in COUNTED for t in _study(journal, "cut")) == 8


@pytest.mark.parametrize("storage", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_killed_unreaped_worker_never_stalls_the_study(tmp_path: Path, storage: tuple[str, str]) -> None:
    """A worker is stopped inside a trial, killed and never waited for (a zombie); the study finishes its budget."""
    url, cache = storage
    name = f"zombie-{uuid.uuid4().hex[:8]}"
    n_trials = 24
    join = ["worker", "--study-name", name, "--storage", url, "--no-progress", "--device", "cpu", "--wait", TIMEOUT]
    worker = spawn(tmp_path, *join, log="worker")
    run = ["run", "--proxy", "synflow", "--sampler", "random", "--n-trials", n_trials, "--storage", url,
           "--study-name", name, "--cache", cache, "--no-progress", "--device", "cpu", "--out", "out",
           "--score-seed", uuid.uuid4().int % 10**6]  # fmt: skip
    main = spawn(tmp_path, *run, log="main")
    killed = _kill_inside_a_trial(worker, url, name)
    finish(main, tmp_path, "main")
    assert process_stat(worker.pid)[0] == "Z", "the killed worker stayed unreaped while the study went on"
    worker.wait()
    trials = trials_of(url, name)
    assert sum(t.state in COUNTED for t in trials) == n_trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert trials[killed].state == TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].state in COUNTED
    if "arch" in trials[killed].user_attrs:  # it had drawn its cell: the retry scores that cell
        assert trials[killed].params == retry[0].params
    # (killed while drawing it, the retry's sampler proposes a whole cell afresh, as one uninterrupted run would)


def _peek(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read without the journal's lock (which the stopped worker may hold)."""
    if "://" in url:
        return trials_of(url, name)
    backend = optuna.storages.journal.JournalFileBackend(url)
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend)).get_trials()


def _kill_inside_a_trial(worker: subprocess.Popen, url: str, name: str) -> int:
    """SIGKILL ``worker`` inside a trial: seen running one, it is stopped, seen running it still, and killed; the
    number of that trial."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker ended before it could be killed"
        if running := _running_trials_of(worker.pid, url, name):
            os.kill(worker.pid, signal.SIGSTOP)
            if still := set(running) & set(_running_trials_of(worker.pid, url, name)):
                os.kill(worker.pid, signal.SIGKILL)
                return min(still)
            os.kill(worker.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker was never caught inside a trial")


def _running_trials_of(pid: int, url: str, name: str) -> list[int]:
    try:
        trials = _peek(url, name)
    except KeyError:  # the study is not created yet
        return []
    worker = [str(pid)]
    return [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING and str(t.user_attrs.get("worker", "")).split(":")[1:2] == worker
    ]


@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_a_damaged_score_cache_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "scores.db"
    args = ["run", "--proxy", "params", "--sampler", "random", "--n-trials", 3, "--device", "cpu", "--no-progress",
            "--cache", f"sqlite:///{cache}", "--out", tmp_path / "run"]  # fmt: skip
    if damage == "text":
        cache.write_text("scores, but not a database\n")
    else:  # a real cache cut in half
        assert _bench(tmp_path, *args).returncode == 0
        data = cache.read_bytes()
        cache.write_bytes(data[: len(data) // 2])
        for extra in tmp_path.glob("scores.db-*"):  # the write-ahead log and its index
            extra.unlink()
    result = _bench(tmp_path, *[*args[:-1], tmp_path / "again"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: score cache {cache} is not a readable SQLite database (file is not a database: damaged, or "
        "another kind of file): move it aside to start an empty cache there, or pass --cache with another file"
    ]
    assert not (tmp_path / "again").exists(), "nothing is written for a run that cannot start"
