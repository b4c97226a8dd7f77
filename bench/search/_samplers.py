"""The sampler registry: each entry builds one seeded Optuna sampler for a space.

Every factory takes ``seed``, the space and :class:`SamplerOptions` and says what it can honour:
constraints (Optuna's constrained optimisation) and several objectives. ``bench samplers`` and the
CLI's checks read these flags, so a sampler is one entry here and nothing else. A name ``hub:PACKAGE[:CLASS]``
is a sampler published on OptunaHub (``._hub``), made into a spec when asked for. Every sampler a study
gets is wrapped in :class:`TrialSeededSampler`: each trial is proposed by a sampler made for it, so a
resumed or extended study proposes what one uninterrupted run proposes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial

from spaces import Registry, SearchSpace, UnknownNameError

from ._evolution import RegularizedEvolutionSampler
from ._hub import HubName, HubSampler, is_hub
from ._trial_seeded import TrialSeededSampler

ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]


@dataclass(frozen=True)
class SamplerOptions:
    """Options a sampler may read; each factory takes what applies to it.

    ``constraints_func`` is only given on Optuna versions without ``Trial.set_constraint`` (< 5):
    there, samplers learn a trial's constraints through it.
    """

    population_size: int | None = None
    sample_size: int | None = None
    constraints_func: ConstraintsFunc | None = None
    #: ``--sampler-option`` values, passed to the sampler's constructor (OptunaHub samplers).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The local OptunaHub registry folder hub samplers are loaded from (None: the online registry).
    registry: str | None = None


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its factory and what it supports."""

    build: Callable[[int, SearchSpace, SamplerOptions], BaseSampler]
    description: str
    constraints: bool = False
    multi_objective: bool = True
    #: Default population size and tournament size, for samplers that have them.
    population_size: int | None = None
    sample_size: int | None = None
    #: False for samplers whose sequence the study's storage already indexes (see :class:`TrialSeededSampler`).
    reseed_per_trial: bool = True
    #: The ``--sampler-option`` keys the sampler takes; None where it takes any.
    options: tuple[str, ...] | None = ()

    def __call__(self, *, seed: int, space: SearchSpace, options: SamplerOptions | None = None) -> BaseSampler:
        """The sampler, made afresh for each trial from the study's seed and the trial's slot."""
        opts = options or SamplerOptions()
        return TrialSeededSampler(lambda s: self.build(s, space, opts), seed, reseed_per_trial=self.reseed_per_trial)


SAMPLERS: Registry[BaseSampler] = Registry("sampler")
DEFAULT_POPULATION = 20
DEFAULT_SAMPLE_SIZE = 5


def _constraints_kwargs(options: SamplerOptions) -> dict[str, ConstraintsFunc]:
    return {"constraints_func": options.constraints_func} if options.constraints_func is not None else {}


def _nsga2(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    return optuna.samplers.NSGAIISampler(
        population_size=options.population_size or DEFAULT_POPULATION, seed=seed, **_constraints_kwargs(options)
    )


def _tpe(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, **_constraints_kwargs(options))


def _gp(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    try:
        import torch  # noqa: F401  (GPSampler's own dependency)
    except ImportError as err:
        raise ImportError("sampler 'gp' needs PyTorch: pip install torch") from err
    return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False, **_constraints_kwargs(options))


def _qmc(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    # Optuna maps each categorical parameter to one scrambled Sobol dimension.
    return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False)


def _brute(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    return optuna.samplers.BruteForceSampler(seed=seed)


def _random(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _re(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
    return RegularizedEvolutionSampler(
        population_size=options.population_size or DEFAULT_POPULATION,
        sample_size=options.sample_size or DEFAULT_SAMPLE_SIZE,
        seed=seed,
        constraints_func=options.constraints_func,
    )


SAMPLERS.register(
    "nsga2",
    SamplerSpec(
        _nsga2,
        "NSGA-II (Deb et al. 2002): proxy score against cost, constraints by Deb's rules",
        constraints=True,
        population_size=DEFAULT_POPULATION,
    ),
)
SAMPLERS.register("tpe", SamplerSpec(_tpe, "tree-structured Parzen estimator (Bergstra et al. 2011)", constraints=True))
SAMPLERS.register(
    "gp", SamplerSpec(_gp, "Gaussian-process Bayesian optimisation (Optuna's GPSampler)", constraints=True)
)
SAMPLERS.register("random", SamplerSpec(_random, "uniform random search"))
SAMPLERS.register("qmc", SamplerSpec(_qmc, "scrambled Sobol quasi-random search", reseed_per_trial=False))
SAMPLERS.register("brute", SamplerSpec(_brute, "exhaustive search in a random order (finite spaces)"))
SAMPLERS.register(
    "re",
    SamplerSpec(
        _re,
        "regularised (aging) evolution (Real et al. 2019), DisWOT's searcher: tournament, one-edge mutation",
        constraints=True,
        multi_objective=False,
        population_size=DEFAULT_POPULATION,
        sample_size=DEFAULT_SAMPLE_SIZE,
    ),
)


def sampler_spec(name: str, *, registry: str | None = None) -> SamplerSpec:
    """The sampler ``name``: a registered one, or an OptunaHub one (``hub:...``, from ``registry`` where given,
    else the online registry); an error listing the valid names otherwise."""
    if is_hub(name):
        return hub_spec(name, registry)
    spec = SAMPLERS.factory(check_sampler_name(name))
    assert isinstance(spec, SamplerSpec)
    return spec


def check_sampler_name(name: str) -> str:
    """``name`` if it is a registered sampler or a well-formed ``hub:`` name (not loaded); an error otherwise."""
    if is_hub(name):
        HubName.parse(name)
        return name
    try:
        return SAMPLERS.check(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"{err}, or hub:PACKAGE for a sampler from OptunaHub (see bench samplers)") from None


def hub_spec(name: str, registry: str | None = None) -> SamplerSpec:
    """The spec of an OptunaHub sampler: constraints where its constructor takes ``constraints_func``."""
    hub = HubSampler.load(name, registry)

    def build(seed: int, space: SearchSpace, options: SamplerOptions) -> BaseSampler:
        return hub.build(seed, space.distributions(), options.extra, options.constraints_func)

    return SamplerSpec(build, hub.description(), constraints=hub.takes("constraints_func"), options=hub.options())


def make_sampler(name: str, *, seed: int, space: SearchSpace, options: SamplerOptions | None = None) -> BaseSampler:
    """A seeded sampler ``name`` for ``space``."""
    return sampler_spec(name, registry=options.registry if options else None)(seed=seed, space=space, options=options)
