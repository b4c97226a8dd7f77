"""Regularised (aging) evolution as an Optuna sampler.

Real et al., "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019), the
searcher DisWOT runs over NAS-Bench-201: keep the ``population_size`` most recently *completed* trials
as the population (the oldest one ages out as each child arrives: with parallel workers a trial that
finishes late joins the population when it finishes, as in the paper's asynchronous workers), draw
``sample_size`` of them uniformly *with replacement* (the paper's and NAS-Bench-201's reference
tournament), take the best as the parent, and change exactly one of its parameters (one edge of a
cell) to make the child. Until the population is full, trials are drawn at random.

The sampler works on any space through its Optuna distributions: a categorical parameter moves to
another choice, an integer (or a float with a step) to another grid point, a continuous float is
drawn afresh within its bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]


class RegularizedEvolutionSampler(BaseSampler):
    """Aging evolution with tournament selection and one-parameter mutation, for one objective.

    ``constraints_func`` (optional) returns a trial's constraint values (feasible when all are <= 0);
    without it, constraints set with ``Trial.set_constraint`` are used where Optuna records them.
    In a tournament a feasible trial beats an infeasible one, and of two infeasible trials the one
    with the smaller total violation wins (Deb's rules, as Optuna's NSGA-II applies them).
    """

    def __init__(
        self,
        *,
        population_size: int = 20,
        sample_size: int = 5,
        seed: int | None = None,
        constraints_func: ConstraintsFunc | None = None,
    ) -> None:
        if population_size < 2:
            raise ValueError(f"regularised evolution needs a population of at least 2, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"regularised evolution's sample size must be in 1..{population_size} (the population), "
                f"got {sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._constraints_func = constraints_func
        self._search_space = IntersectionSearchSpace()

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    @staticmethod
    def _refuse_several_objectives(study: optuna.Study) -> None:
        if len(study.directions) > 1:
            raise ValueError(
                "sampler 're' (regularised evolution) optimises one objective; "
                f"this study has {len(study.directions)}. Use a single objective (--objectives score) or nsga2"
            )

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        self._refuse_several_objectives(study)
        space = self._search_space.calculate(study)
        return {name: dist for name, dist in sorted(space.items()) if not dist.single()}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        population = self.population(study, search_space)
        if len(population) < self.population_size:
            return {}  # still filling the population: the independent (random) sampler draws
        picks = self._rng.choice(len(population), size=self.sample_size, replace=True)
        maximise = study.direction == StudyDirection.MAXIMIZE
        # The first of equally fit contestants wins: deterministic for a seed.
        parent = max((population[i] for i in picks), key=lambda t: self._fitness(t, maximise))
        child = {name: parent.params[name] for name in search_space}
        names = list(search_space)
        name = names[self._rng.randint(len(names))]
        child[name] = self._mutate(search_space[name], child[name])
        return child

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        self._refuse_several_objectives(study)
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def population(self, study: optuna.Study, search_space: dict[str, BaseDistribution]) -> list[FrozenTrial]:
        """The living population: the ``population_size`` most recently completed trials of the space, oldest
        first (aging by completion, not by trial number)."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        members = [t for t in complete if all(name in t.params for name in search_space)]
        members.sort(key=lambda t: (t.datetime_complete or datetime.max, t.number))
        return members[-self.population_size :]

    # --- selection and mutation --------------------------------------------------------------------

    def _violation(self, trial: FrozenTrial) -> float:
        if self._constraints_func is not None:
            values: Sequence[float] = self._constraints_func(trial)
        else:
            values = list(getattr(trial, "constraints", {}).values()) or trial.system_attrs.get("constraints") or ()
        return float(sum(v for v in values if v > 0))

    def _fitness(self, trial: FrozenTrial, maximise: bool) -> tuple[float, float]:
        """A key where larger is better: feasibility first (less violation), then the objective."""
        value = float(trial.values[0])
        return (-self._violation(trial), value if maximise else -value)

    def _mutate(self, dist: BaseDistribution, current: Any) -> Any:
        """Another value of ``dist`` than ``current``, drawn uniformly."""
        if isinstance(dist, CategoricalDistribution):
            here = int(dist.to_internal_repr(current))  # the choice's position (NaN-aware)
            pick = self._rng.randint(len(dist.choices) - 1)
            return dist.choices[pick + (pick >= here)]
        if isinstance(dist, IntDistribution):
            if dist.log:
                return int(self._draw_other(dist.low, dist.high, 1, current))
            return int(self._draw_other(dist.low, dist.high, dist.step, current))
        if isinstance(dist, FloatDistribution):
            if dist.step is not None:
                return float(self._draw_other(dist.low, dist.high, dist.step, current))
            if dist.log:
                return float(math.exp(self._rng.uniform(math.log(dist.low), math.log(dist.high))))
            return float(self._rng.uniform(dist.low, dist.high))
        raise ValueError(f"regularised evolution cannot mutate a parameter of type {type(dist).__name__}")

    def _draw_other(self, low: float, high: float, step: float, current: float) -> float:
        """A grid point of ``low, low + step, ..., high`` other than the one nearest ``current``."""
        count = round((high - low) / step) + 1
        here = min(max(round((current - low) / step), 0), count - 1)
        pick = self._rng.randint(count - 1)
        pick += pick >= here  # skip the current point
        return low + pick * step
