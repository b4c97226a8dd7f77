"""Runs in real processes: killed with SIGKILL and resumed, and several workers sharing one storage.

The PostgreSQL cases need a server: ``.ci/run`` starts one and sets ``BENCH_TEST_POSTGRES_URL``;
elsewhere they are skipped when it is unset (under CI they fail instead).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from bench.databases import database_url
from bench.search import MEMORY, RunConfig, open_storage, start_worker, trial_result
from bench.search._session import load_study_config

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
TIMEOUT = 240


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the test server (so workers also race to create Optuna's tables), named by a
    ``postgresql://`` URL without a driver, as the README writes it."""
    url = os.environ.get("BENCH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("BENCH_TEST_POSTGRES_URL is not set; .ci/run starts a PostgreSQL server and sets it")
        pytest.skip("set BENCH_TEST_POSTGRES_URL to a PostgreSQL database to run this test")
    name = f"bench_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(study storage, score cache URL): a journal file with SQLite, or PostgreSQL for both."""
    if request.param == "journal":
        return str(tmp_path / "journal.log"), f"sqlite:///{tmp_path / 'scores.db'}"
    url = request.getfixturevalue("postgres_url")
    return url, url


def spawn(tmp_path: Path, *args: object, log: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / f"{log}.log", "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", *map(str, args)], cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT
        )


def finish(proc: subprocess.Popen, tmp_path: Path, log: str) -> None:
    code = proc.wait(timeout=TIMEOUT)
    assert code == 0, (tmp_path / f"{log}.log").read_text()


def trials_of(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(storage).storage).get_trials()


def run_args(storage: str, cache: str, name: str, n_trials: int, *extra: object) -> list[object]:
    return [
        "run", "--proxy", "params", "--n-trials", n_trials, "--storage", storage, "--study-name", name,
        "--cache", cache, "--no-progress", "--device", "cpu", "--out", f"out-{name}", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "storage",
    ["journal", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path: Path, storage: tuple[str, str]) -> None:
    url, cache = storage
    name = f"kill-{uuid.uuid4().hex[:8]}"
    n_trials = 30
    args = run_args(url, cache, name, n_trials, "--sampler", "random", "--score-seed", uuid.uuid4().int % 10**6)
    proc = spawn(tmp_path, *args, log="first")
    deadline = time.monotonic() + TIMEOUT
    snapshot: list[optuna.trial.FrozenTrial] = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            snapshot = trials_of(url, name)
        except KeyError:  # the study is not created yet
            snapshot = []
        done = sum(t.state in COUNTED for t in snapshot)
        if done >= 6 and any(t.state == TrialState.RUNNING for t in snapshot):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = trials_of(url, name)  # the state the dead process left
    completed = {t.number: t for t in before if t.state in COUNTED}
    left_running = [t for t in before if t.state == TrialState.RUNNING]
    assert 6 <= len(completed) < n_trials

    finish(spawn(tmp_path, *args, log="second"), tmp_path, "second")
    after = trials_of(url, name)
    assert [t.number for t in after] == list(range(len(after)))
    assert sum(t.state in COUNTED for t in after) == n_trials  # the budget, exactly
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for number, trial in completed.items():  # nothing completed is lost or run again
        assert after[number].state == trial.state and after[number].values == trial.values
        assert after[number].params == trial.params
    retries = {t.user_attrs["retry_of"]: t for t in after if "retry_of" in t.user_attrs}
    for trial in left_running:  # the killed trial failed and ran again with its parameters
        assert after[trial.number].state == TrialState.FAIL
        assert trial.number in retries and retries[trial.number].state in COUNTED
        assert trial.params.items() <= retries[trial.number].params.items()
    assert set(retries) == {t.number for t in after if t.state == TrialState.FAIL}
    # ... and it proposed, in order, what one uninterrupted run of the same study proposes.
    config = load_study_config(name, open_storage(url))
    alone = start_worker(config, storage=MEMORY, out_dir=tmp_path / "alone", device="cpu")
    alone.run()
    expected = [t.params for t in alone.study.get_trials() if t.state in COUNTED]
    assert [t.params for t in after if t.state in COUNTED] == expected


def test_workers_share_a_study_and_compute_each_score_once(tmp_path: Path, storage: tuple[str, str]) -> None:
    url, cache = storage
    name = f"workers-{uuid.uuid4().hex[:8]}"
    n_trials = 40
    score_seed = uuid.uuid4().int % 10**6  # a fresh score key: the cache starts empty for this test
    # The workers start first and wait for the study, so that all three share the budget.
    join = ["worker", "--study-name", name, "--storage", url, "--no-progress", "--device", "cpu", "--wait", TIMEOUT]
    workers = [spawn(tmp_path, *join, log=f"worker{i}") for i in range(2)]
    args = run_args(url, cache, name, n_trials, "--population", 6, "--score-seed", score_seed)
    main = spawn(tmp_path, *args, log="main")
    for i, proc in enumerate(workers):
        finish(proc, tmp_path, f"worker{i}")
    finish(main, tmp_path, "main")

    trials = trials_of(url, name)
    assert sum(t.state in COUNTED for t in trials) == n_trials
    assert all(t.state in COUNTED for t in trials), "no trial failed or was left running"
    assert len({t.user_attrs["worker"] for t in trials}) >= 2, "the workers shared the work"
    archs = {t.user_attrs["arch"] for t in trials}
    computed = [t.user_attrs["arch"] for t in trials if not trial_result(t)["cached"]]
    assert sorted(computed) == sorted(archs), "each architecture's score was computed exactly once"
    config = RunConfig(proxy="params", score_seed=score_seed, study_name=name, cache=cache).resolved()
    engine = sa.create_engine(database_url(cache))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT arch, status FROM bench_scores_v2 WHERE config = :c"), {"c": config.scoring().key()}
        ).all()
    engine.dispose()
    assert sorted(r.arch for r in rows) == sorted(archs) and {r.status for r in rows} == {"ok"}
    # The main process writes the run folder once every trial is in.
    assert (tmp_path / f"out-{name}" / "pareto.csv").is_file()
