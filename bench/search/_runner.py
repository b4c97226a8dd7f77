"""The trial loop every worker runs: an exact budget, recovery of dead workers' trials, retries.

Budget: a study of ``n_trials`` is done when that many trials are COMPLETE or PRUNED (a pruned
trial is one whose score failed: it counts, with its reason). FAIL is kept for trials whose worker
died or was interrupted; they do not count, and their parameters are queued again (``retry_of``).

Dead workers: a running trial records its worker (host, process id, process start time). Under
the budget lock, a running trial of a process of this machine that no longer runs (gone, a zombie not yet
reaped, or its id taken by a newer process) is failed and retried; on RDB storages Optuna's heartbeat
(``fail_stale_trials``) does the same for workers of other machines, also while a worker waits for the
last trials of the budget.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..processes import pid_alive, process_start
from ._storage import OpenedStorage

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_RETRIES = 3


class TransientScoreError(RuntimeError):
    """A trial's score failed for a reason of the moment (out of memory, a runtime error): the trial fails
    and is retried with its parameters, instead of counting as pruned."""


class _NoTracebackForTransient(logging.Filter):
    """Optuna logs a failed trial with its traceback; a transient score failure is expected and said in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TransientScoreError):
            record.exc_info = None
        return True


def worker_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or ''}"


def worker_alive(worker: str) -> bool | None:
    """Whether the worker ``worker`` still runs: None when it runs on another machine (unknown here)."""
    host, _, rest = worker.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    return pid_alive(int(pid_text), started or None)


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's heartbeat check: fail (and, through the storage's callback, retry) the running trials whose
    worker stopped beating for the grace period; a no-op on storages without a heartbeat."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def enqueue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial again, unless it has been retried too often already.

    A trial that had drawn its whole architecture (the objective records ``arch`` once it has) is queued
    with its parameters. One that died while its sampler was still drawing is queued without them: the
    next slot's sampler proposes it whole, as one uninterrupted run would, where fixing the half it had
    drawn would shift the sampler's generator for the other half.
    """
    retries = int(trial.user_attrs.get("retries", 0)) + 1
    if retries > MAX_RETRIES:
        return
    params = dict(trial.params) if "arch" in trial.user_attrs else {}
    study.enqueue_trial(params, user_attrs={"retry_of": trial.number, "retries": retries})


@dataclass
class Counts:
    counted: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0

    @classmethod
    def query(cls, storage: optuna.storages.BaseStorage, study_id: int) -> Counts:
        """The counts of one consistent read of the study's trials.

        One read, not a count per state: a trial finishing between two counts would be missed by
        both, and the budget overrun by it. (RDB storages sit behind Optuna's cache, which reads only
        the trials that are new or unfinished.)
        """
        return cls.of(storage.get_all_trials(study_id, deepcopy=False))

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> Counts:
        counts = cls()
        for t in trials:
            if t.state in COUNTED:
                counts.counted += 1
            elif t.state == TrialState.RUNNING:
                counts.running += 1
            elif t.state == TrialState.WAITING:
                counts.waiting += 1
            elif t.state == TrialState.FAIL:
                counts.failed += 1
        return counts


def recover_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage, study_id: int) -> list[int]:
    """Fail and retry the running trials whose worker is gone; call with the budget lock held.

    A running trial without a worker attribute was created by a worker that died before it could
    write one (it writes it while still holding the lock).
    """
    recovered = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is not None and worker_alive(str(worker)) is not False:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first, or the trial finished after all
        enqueue_retry(study, storage.get_trial(trial_id))
        recovered.append(trial.number)
    return recovered


@dataclass
class LoopResult:
    """What one worker did: the trials it ran and where its time went."""

    trials: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    transient: list[int] = field(default_factory=list)  # trials failed by a transient score error, retried
    objective_seconds: float = 0.0
    overhead_seconds: float = 0.0  # sampler and storage: everything in a trial but the objective
    waited_seconds: float = 0.0


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | list[float]],
    *,
    n_trials: int,
    opened: OpenedStorage,
    on_trial: Callable[[FrozenTrial, Counts], None] | None = None,
    poll: float = 1.0,
) -> LoopResult:
    """Run trials until ``n_trials`` are counted in the study, across all of its workers.

    Each trial is created by ``study.optimize(n_trials=1)`` under the budget lock (so Optuna's own
    heartbeat, stale-trial handling and sampler callbacks apply); the objective releases the lock
    as soon as the trial has recorded its worker. While the other workers' running trials would
    complete the budget, this worker waits: they finish, or die and are retried here.
    """
    quiet = _NoTracebackForTransient()
    handlers = logging.getLogger("optuna").handlers  # filters of handlers see the records of child loggers
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        return _run_trials(study, objective, n_trials, opened, on_trial, poll)
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def _run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | list[float]],
    n_trials: int,
    opened: OpenedStorage,
    on_trial: Callable[[FrozenTrial, Counts], None] | None,
    poll: float,
) -> LoopResult:
    me = worker_id()
    storage = opened.storage
    study_id = storage.get_study_id_from_name(study.study_name)
    result = LoopResult()
    while True:
        with contextlib.ExitStack() as lock:
            lock.enter_context(opened.lock.hold(study.study_name))
            result.recovered += recover_dead_trials(study, storage, study_id)
            counts = Counts.query(storage, study_id)
            if counts.counted >= n_trials:
                return result
            if counts.counted + counts.running >= n_trials:
                # Optuna checks heartbeats as each trial starts; a worker that starts none checks them here.
                fail_stale_trials(study)
                lock.close()
                start = time.perf_counter()
                time.sleep(poll)
                result.waited_seconds += time.perf_counter() - start
                continue
            call = _LockedCall(objective, lock, me)
            start = time.perf_counter()
            try:
                study.optimize(call, n_trials=1, catch=(TransientScoreError,), gc_after_trial=False)
            except BaseException:
                if call.number is not None:
                    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, call.number)
                    if storage.get_trial(trial_id).state == TrialState.FAIL:
                        enqueue_retry(study, storage.get_trial(trial_id))
                raise
            result.overhead_seconds += time.perf_counter() - start - call.seconds
            result.objective_seconds += call.seconds
            if call.number is not None:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, call.number)
                if storage.get_trial(trial_id).state == TrialState.FAIL:  # a transient score failure
                    enqueue_retry(study, storage.get_trial(trial_id))
                    result.transient.append(call.number)
        if call.number is not None:
            result.trials.append(call.number)
            if on_trial is not None:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, call.number)
                on_trial(storage.get_trial(trial_id), Counts.query(storage, study_id))


class _LockedCall:
    """The objective, entered with the budget lock held: it names its worker, then lets the lock go."""

    def __init__(
        self, objective: Callable[[optuna.Trial], float | list[float]], lock: contextlib.ExitStack, worker: str
    ) -> None:
        self.objective = objective
        self.lock = lock
        self.worker = worker
        self.number: int | None = None
        self.seconds = 0.0

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        trial.set_user_attr("worker", self.worker)
        self.number = trial.number
        self.lock.close()  # the trial exists and names its worker: other workers may go on
        start = time.perf_counter()
        try:
            return self.objective(trial)
        finally:
            self.seconds = time.perf_counter() - start
