"""Storage safety in one process: journal repair, process liveness, heartbeats, database URLs, one cache per study.

The scenarios with real processes killed and left unreaped are in ``test_faults.py`` (``nox -s faults``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.databases import absolute_database_url, database_url
from bench.processes import pid_alive, process_stat
from bench.scoring import ScoreCache
from bench.search import RunConfig, open_storage, run_trials, start_worker
from bench.search import _storage as storage_module
from bench.search._journal import end_with_whole_record
from bench.search._runner import enqueue_retry, worker_alive
from bench.search._session import join_worker

# --- journal ------------------------------------------------------------------------------------------------


def _records(n: int) -> bytes:
    return b"".join(json.dumps({"op_code": 0, "n": i}).encode() + b"\n" for i in range(n))


@pytest.mark.parametrize("cut", [2, 7, 15, 22])  # bytes cut from the last record (23 bytes)
def test_a_partial_last_record_is_set_aside(tmp_path: Path, cut: int) -> None:
    journal = tmp_path / "journal.log"
    whole = _records(3)
    journal.write_bytes(whole[:-cut])
    last_start = whole.rfind(b"\n", 0, len(whole) - 1) + 1
    message = end_with_whole_record(journal)
    assert message is not None and str(journal) in message and "partial record" in message
    assert journal.read_bytes() == whole[:last_start]
    assert (tmp_path / "journal.log.partial").read_bytes() == whole[last_start:-cut] + b"\n"


def test_a_whole_journal_and_a_missing_newline_lose_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    whole = _records(2)
    journal.write_bytes(whole)
    assert end_with_whole_record(journal) is None and journal.read_bytes() == whole
    journal.write_bytes(whole[:-1])  # the last record whole, but for its newline
    assert end_with_whole_record(journal) is None and journal.read_bytes() == whole
    assert not (tmp_path / "journal.log.partial").exists()


def test_a_journal_cut_inside_its_first_record_starts_empty(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(_records(1)[:9])
    opened = open_storage(str(journal))
    assert optuna.get_all_study_names(opened.storage) == []
    optuna.create_study(storage=opened.storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), 2)
    again = optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage)
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 2


def test_appending_after_a_crash_mid_write_keeps_the_journal_readable(tmp_path: Path) -> None:
    """A record cut short while a study is open (another worker died writing) is set aside at the next append."""
    journal = tmp_path / "journal.log"
    opened = open_storage(str(journal))
    study = optuna.create_study(storage=opened.storage, study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), 3)
    with open(journal, "ab") as fh:
        fh.write(b'{"op_code":4,"worker_id":"dead","study_id":0,"datetime_st')
    study.optimize(lambda t: t.suggest_float("x", 0, 1), 2)
    reloaded = optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage)
    assert [t.state for t in reloaded.trials] == [TrialState.COMPLETE] * 5
    assert b"dead" in (tmp_path / "journal.log.partial").read_bytes()


HOLD_THE_JOURNAL_LOCK = """
import sys, time
from bench.search._journal import FlockJournalLock
FlockJournalLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def _append_in_a_thread(journal: Path) -> threading.Thread:
    def append() -> None:  # opening the journal takes its lock too
        optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage).set_user_attr("after", 1)

    thread = threading.Thread(target=append, daemon=True)
    thread.start()
    return thread


def test_a_writer_killed_holding_the_journal_lock_holds_no_one_up(tmp_path: Path) -> None:
    """The lock excludes a live holder, and is the others' as soon as the holder is killed (Optuna's own file
    lock, left behind by a dead holder, makes them wait out a 30 s grace period)."""
    journal = tmp_path / "journal.log"
    optuna.create_study(storage=open_storage(str(journal)).storage, study_name="s")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_JOURNAL_LOCK, str(journal)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        waiting = _append_in_a_thread(journal)
        waiting.join(1.0)
        assert waiting.is_alive(), "a write went through while another process held the journal's lock"
        holder.kill()
        holder.wait()
        waiting.join(10.0)  # far below the 30 s a left-behind lock file costs
        assert not waiting.is_alive(), "the lock of a killed writer was not released"
    finally:
        holder.kill()
        holder.wait()
    reloaded = optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage)
    assert reloaded.user_attrs == {"after": 1}
    assert not (tmp_path / "journal.log.flock").exists()  # the killed holder's file was taken and removed


def test_writers_in_many_threads_and_processes_append_whole_records(tmp_path: Path) -> None:
    """The lock file comes and goes with each writer; no two writers ever hold it at once."""
    journal = tmp_path / "journal.log"
    optuna.create_study(storage=open_storage(str(journal)).storage, study_name="s")
    script = (
        "import sys, optuna\nfrom bench.search import open_storage\n"
        "s = optuna.load_study(study_name='s', storage=open_storage(sys.argv[1]).storage)\n"
        "[s.set_user_attr(f'{sys.argv[2]}-{i}', i) for i in range(15)]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    others = [subprocess.Popen([sys.executable, "-c", script, str(journal), f"p{k}"], env=env) for k in range(2)]
    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage)
    threads = [threading.Thread(target=lambda k=k: [study.set_user_attr(f"t{k}-{i}", i) for i in range(15)])
               for k in range(3)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(other.wait(120) == 0 for other in others)
    reloaded = optuna.load_study(study_name="s", storage=open_storage(str(journal)).storage)
    assert len(reloaded.user_attrs) == 5 * 15
    assert all(line.endswith(b"}") for line in journal.read_bytes().splitlines())
    assert not (tmp_path / "journal.log.flock").exists()


# --- liveness ---------------------------------------------------------------------------------------------


def test_a_killed_unreaped_process_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        state, started = process_stat(child.pid)
        me = f"{socket.gethostname()}:{child.pid}:{started}"
        assert state != "Z" and pid_alive(child.pid, started) and worker_alive(me)
        assert not pid_alive(child.pid, str(int(started) + 1)), "a reused process id is another process"
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_stat(child.pid)[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, 0)  # still there for the kernel: a zombie, not yet reaped
        assert not pid_alive(child.pid) and worker_alive(me) is False
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)
    assert worker_alive(f"another-host:{child.pid}:{started}") is None


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_worker_waiting_for_the_budget_fails_a_silent_trial_of_another_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last trial's worker, on another machine, stops beating: the waiting worker retries it."""
    monkeypatch.setattr(storage_module, "HEARTBEAT_INTERVAL", 1)
    monkeypatch.setattr(storage_module, "GRACE_PERIOD", 1)
    opened = open_storage(f"sqlite:///{tmp_path / 'study.db'}", on_stale=enqueue_retry)
    study = optuna.create_study(storage=opened.storage, study_name="s")
    stuck = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    stuck.set_user_attr("worker", "another-host:4242:1")
    stuck.set_user_attr("arch", "drawn")  # it had drawn its parameters: the retry keeps them
    opened.storage.record_heartbeat(stuck._trial_id)
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(run_trials(study, lambda t: t.suggest_float("x", 0, 1), n_trials=1, opened=opened)),
        daemon=True,
    )
    thread.start()
    thread.join(timeout=60)
    assert done, "the worker still waits for a trial whose worker is gone"
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[1].state == TrialState.COMPLETE
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == trials[0].params


# --- database URLs and the score cache ---------------------------------------------------------------------------


def test_postgresql_urls_are_bound_to_the_installed_driver() -> None:
    driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
    assert database_url("postgresql://user@host/db") == f"postgresql+{driver}://user@host/db"
    assert database_url("postgres://u:p%40ss@h:5433/db") == f"postgresql+{driver}://u:p%40ss@h:5433/db"
    assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert absolute_database_url("sqlite:///x.db") == f"sqlite:///{Path('x.db').resolve()}"
    assert absolute_database_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_database_url("postgresql://u:secret@h/db") == "postgresql://u:secret@h/db"


@pytest.mark.parametrize("content", [b"not a database at all, just text\n", b"\x00" * 4096, b"SQLite"])
def test_a_cache_file_that_is_no_database_is_named_in_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "scores.db"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"score cache {path} is not a readable SQLite database.*move it aside"):
        ScoreCache(f"sqlite:///{path}")


def test_a_study_keeps_its_cache_wherever_its_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir(), other.mkdir()
    journal = str(tmp_path / "journal.log")
    monkeypatch.chdir(first)
    config = RunConfig(proxy="params", sampler="random", n_trials=3, study_name="s").resolved()
    assert config.cache == f"sqlite:///{first / 'results' / 'scores.db'}"
    start_worker(config, storage=journal, out_dir=tmp_path / "out", device="cpu").run()
    monkeypatch.chdir(other)
    worker = join_worker("s", storage=journal, device="cpu")
    assert worker.config.cache == config.cache and worker.objective.scorer.cache.url == config.cache
    rerun = RunConfig(proxy="params", sampler="random", n_trials=5, study_name="s").resolved()
    again = start_worker(rerun, storage=journal, out_dir=tmp_path / "out", device="cpu")
    assert again.config.cache == config.cache  # a run naming no cache uses the study's
    again.run()
    assert len(again.objective.scorer.cache.records()) == 5
    mine = f"sqlite:///{other / 'mine.db'}"
    explicit = start_worker(
        RunConfig(**{**rerun.__dict__, "cache": mine}), storage=journal, out_dir=other, device="cpu"
    )
    assert explicit.config.cache == mine  # a cache named on the command line is used
