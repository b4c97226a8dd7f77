"""Per-trial determinism: a study's proposals depend only on its seed, the trial's slot and the trials before.

An Optuna sampler holds a random generator that advances with each proposal (and ``GPSampler`` a cache of
the kernels it fitted before), so what a study proposes depends on what its process proposed earlier: a
study resumed after a crash, or extended from N to M trials, rebuilds its sampler with the same seed and
proposes its first architectures again. :class:`TrialSeededSampler` instead makes a fresh sampler for every
trial, seeded from the study's seed and the trial's *slot*: the number of trials before it that did not
fail. A trial whose worker died fails and is retried under its own parameters in the next slot, so a killed
and resumed study, an extended one and one uninterrupted run propose the same sequence (on one worker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def slot_seed(seed: int, slot: int) -> int:
    """The seed of the sampler that proposes slot ``slot`` of a study seeded with ``seed``."""
    return int.from_bytes(hashlib.sha256(f"{seed}|slot|{slot}".encode()).digest()[:4], "little") % (2**31)


def trial_slot(study: optuna.Study, trial: FrozenTrial) -> int:
    """How many trials before ``trial`` did not fail: its place in the study's sequence of proposals."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < trial.number and t.state != TrialState.FAIL)


class TrialSeededSampler(BaseSampler):
    """Wraps a sampler factory so that each trial is proposed by a sampler made for it alone.

    ``build(seed)`` makes the wrapped sampler. With ``reseed_per_trial`` (the default) each trial's sampler
    gets :func:`slot_seed` of the study's seed and the trial's slot; without it every trial's sampler gets
    the study's seed, for samplers whose sequence is already indexed by the study's storage (scrambled
    Sobol points, whose index Optuna keeps in the study). Anything a sampler keeps between trials besides
    what the storage holds is dropped, which is the point.
    """

    def __init__(self, build: Callable[[int], BaseSampler], seed: int, *, reseed_per_trial: bool = True) -> None:
        self._build = build
        self._seed = seed
        self._reseed_per_trial = reseed_per_trial
        self._samplers: dict[int, BaseSampler] = {}
        #: The wrapped sampler of the study's own seed: for what Optuna asks outside a trial.
        self.base = build(seed)

    @property
    def seed(self) -> int:
        return self._seed

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        sampler = self._samplers.get(trial.number)
        if sampler is None:  # a trial this process did not start (e.g. told from elsewhere)
            sampler = self._samplers[trial.number] = self.base
        return sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        seed = slot_seed(self._seed, trial_slot(study, trial)) if self._reseed_per_trial else self._seed
        sampler = self._samplers[trial.number] = self._build(seed)
        sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        sampler = self._samplers.pop(trial.number, self.base)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        # Each trial's sampler is seeded from its slot; there is no shared generator to reseed.
        pass

    def __repr__(self) -> str:
        return f"TrialSeededSampler({type(self.base).__name__}, seed={self._seed})"
