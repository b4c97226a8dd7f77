"""The fine-tuning protocol that tables report: a learning rate chosen per model and task on a held-out part
of the training data, then several seeds, mean and standard deviation, and a flag on one-class results.

Per task: for each learning rate of the grid, fine-tune on ``fit`` with seed 0 and score on ``select``
(both parts of GLUE's training set; :mod:`._finetune`); the rate with the best main metric wins (the first
of the grid among equals). With that rate, seeds ``0 .. seeds-1`` are fine-tuned on ``fit`` and scored on
the dev set (seed 0's network is the one already trained). A seed's result is flagged ``constant`` where
it predicts one class for every dev example: it then scores what the majority class scores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from spaces.autodistil import TransformerStudent

from ._finetune import FinetuneResult, FinetuneSettings, majority_result, score_classifier, train_classifier
from ._glue import TASKS, check_task


@dataclass(frozen=True)
class Protocol:
    """The learning-rate grid, the number of seeds and the budget of every fine-tuning run
    (``finetune.lr`` and ``finetune.seed`` are set by the protocol)."""

    lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    seeds: int = 3
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    tasks: tuple[str, ...] = tuple(TASKS)

    def check(self) -> Protocol:
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise ValueError(f"the learning-rate grid needs positive rates, got {list(self.lrs)}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if not self.tasks:
            raise ValueError(f"name at least one GLUE task. Valid choices: {', '.join(TASKS)}")
        for task in self.tasks:
            check_task(task)
        self.finetune.check()
        return self


@dataclass(frozen=True)
class TaskOutcome:
    """One model on one task: the chosen rate, each rate's ``select`` score and each seed's dev result."""

    task: str
    lr: float
    select_scores: dict[float, float]
    runs: tuple[FinetuneResult, ...]

    @property
    def main(self) -> str:
        return TASKS[self.task].metrics[0]

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs]

    @property
    def constant_runs(self) -> int:
        return sum(r.constant for r in self.runs)


def _main(result: FinetuneResult) -> float:
    return next(iter(result.metrics.values()))


def choose_lr(scores: dict[float, float]) -> float:
    """The rate with the highest ``select`` score; the first of the grid among equals."""
    best = max(scores.values())
    return next(lr for lr, score in scores.items() if score == best)


def run_task(
    net: TransformerStudent, task: str, protocol: Protocol, *, root: str | os.PathLike | None = None
) -> TaskOutcome:
    """The protocol (see the module) for one model and task."""
    base = protocol.finetune
    scores: dict[float, float] = {}
    kept: dict[float, TransformerStudent] = {}
    seconds: dict[float, float] = {}
    for lr in protocol.lrs:
        settings = replace(base, lr=lr, seed=0)
        trained, seconds[lr] = train_classifier(net, task, settings, root=root, part="fit")
        scores[lr] = _main(score_classifier(trained, task, settings, root=root, part="select"))
        if choose_lr(scores) == lr:
            kept = {lr: trained}  # only the best so far: the others are never scored on dev
    lr = choose_lr(scores)
    settings = replace(base, lr=lr, seed=0)
    runs = [score_classifier(kept[lr], task, settings, root=root, part="dev", train_seconds=seconds[lr])]
    for seed in range(1, protocol.seeds):
        settings = replace(base, lr=lr, seed=seed)
        trained, spent = train_classifier(net, task, settings, root=root, part="fit")
        runs.append(score_classifier(trained, task, settings, root=root, part="dev", train_seconds=spent))
    return TaskOutcome(task, lr, scores, tuple(runs))


def run_protocol(
    net: TransformerStudent, protocol: Protocol, *, root: str | os.PathLike | None = None
) -> dict[str, TaskOutcome]:
    protocol.check()
    return {task: run_task(net, task, protocol, root=root) for task in protocol.tasks}


def majority_outcomes(protocol: Protocol, *, root: str | os.PathLike | None = None) -> dict[str, TaskOutcome]:
    """The majority class of ``fit`` predicted for every dev example, as one (flagged) run per task."""
    return {
        t: TaskOutcome(t, float("nan"), {}, (majority_result(t, protocol.finetune, root=root),)) for t in protocol.tasks
    }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def summary_row(outcomes: dict[str, TaskOutcome]) -> dict[str, object]:
    """Mean and standard deviation (over seeds) of every metric and of the GLUE average (the mean of the
    tasks' main metrics within each seed), each task's chosen rate, and the ``flags``: the tasks where some
    seed predicted one class (``cola 3/3``), empty where none did."""
    row: dict[str, object] = {}
    for task, outcome in outcomes.items():
        for metric in TASKS[task].metrics:
            row[f"{task}_{metric}"], row[f"{task}_{metric}_std"] = _mean_std(outcome.values(metric))
        row[f"{task}_lr"] = outcome.lr
    n = min(len(o.runs) for o in outcomes.values())
    per_seed = [np.mean([o.values(o.main)[i] for o in outcomes.values()]) for i in range(n)]
    row["glue_avg"], row["glue_avg_std"] = _mean_std(per_seed)
    row["flags"] = ", ".join(f"{t} {o.constant_runs}/{len(o.runs)}" for t, o in outcomes.items() if o.constant_runs)
    row["constant"] = bool(row["flags"])
    return row
