"""Per-trial determinism: an extended or interrupted-and-resumed study proposes what one uninterrupted run proposes.

The sequences of proposed architectures are compared, for every registered sampler, not just their counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from bench.search import SAMPLERS, RunConfig, start_worker
from bench.search._runner import COUNTED

N = 12


def config(tmp_path: Path, sampler: str, n_trials: int) -> RunConfig:
    return RunConfig(
        proxy="params",
        sampler=sampler,
        n_trials=n_trials,
        seed=7,
        objectives=("score",),
        population_size=4 if sampler == "re" else None,
        sample_size=2 if sampler == "re" else None,
        cache=f"sqlite:///{tmp_path / 'scores.db'}",
    ).resolved()


def run(tmp_path: Path, name: str, sampler: str, n_trials: int, *, interrupt_at: int | None = None) -> list[str]:
    """Run (or resume) the study in ``name``; return the architectures of its counted trials, in trial order."""
    worker = start_worker(config(tmp_path, sampler, n_trials), storage=str(tmp_path / name), out_dir=tmp_path)
    if interrupt_at is not None:
        objective = worker.objective

        def interrupted(trial):
            if trial.number == interrupt_at:
                objective.architecture(trial)  # the trial has its parameters, as a killed one would
                raise KeyboardInterrupt
            return objective(trial)

        worker.objective = interrupted
        with pytest.raises(KeyboardInterrupt):
            worker.run()
        return []
    worker.run()
    trials = worker.study.get_trials()
    return [t.user_attrs["arch"] for t in trials if t.state in COUNTED]


@pytest.mark.parametrize("sampler", SAMPLERS.names())
def test_extending_and_resuming_propose_what_one_run_proposes(tmp_path: Path, sampler: str) -> None:
    uninterrupted = run(tmp_path, "one.log", sampler, N)
    assert len(uninterrupted) == N and len(set(uninterrupted)) > N // 2

    run(tmp_path, "extended.log", sampler, N // 2)
    assert run(tmp_path, "extended.log", sampler, N) == uninterrupted

    run(tmp_path, "resumed.log", sampler, N, interrupt_at=N // 2 + 1)
    resumed = run(tmp_path, "resumed.log", sampler, N)
    assert resumed == uninterrupted


def test_an_interrupted_trial_fails_and_its_retry_takes_its_place(tmp_path: Path) -> None:
    run(tmp_path, "s.log", "tpe", N, interrupt_at=3)
    worker = start_worker(config(tmp_path, "tpe", N), storage=str(tmp_path / "s.log"), out_dir=tmp_path)
    worker.run()
    trials = worker.study.get_trials()
    assert trials[3].state == TrialState.FAIL
    assert trials[4].user_attrs["retry_of"] == 3 and trials[4].params == trials[3].params
    assert sum(t.state in COUNTED for t in trials) == N


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_trial_killed_while_drawing_its_parameters_is_proposed_again_whole(tmp_path: Path, sampler: str) -> None:
    uninterrupted = run(tmp_path, "one.log", sampler, N)
    worker = start_worker(config(tmp_path, sampler, N), storage=str(tmp_path / "cut.log"), out_dir=tmp_path)
    objective, names = worker.objective, list(worker.objective.distributions)

    def cut(trial):
        if trial.number == 5:
            for name in names[: len(names) // 2]:  # half the cell drawn, then the process dies
                trial.suggest_categorical(name, objective.distributions[name].choices)
            raise KeyboardInterrupt
        return objective(trial)

    worker.objective = cut
    with pytest.raises(KeyboardInterrupt):
        worker.run()
    assert run(tmp_path, "cut.log", sampler, N) == uninterrupted
