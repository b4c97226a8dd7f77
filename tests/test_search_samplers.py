"""Every registered sampler passes the same checks (after Optuna's own shared sampler tests), and RE's own."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import BasicSamplerTestCase, SingleOnlySamplerTestCase

from bench.search import SAMPLERS, RegularizedEvolutionSampler, SamplerOptions, make_sampler, sampler_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# A small mixed space: every sampler (brute force included) can enumerate it.
MIXED = {
    "op": CategoricalDistribution(("none", "skip", "conv1", "conv3", "pool")),
    "depth": IntDistribution(1, 7, step=2),
    "width": IntDistribution(8, 64, log=True),
    "ratio": FloatDistribution(0.0, 1.0, step=0.25),
}
N_TRIALS = {"gp": 12}  # the GP is fitted each trial: keep its share of the suite short
DEFAULT_N = 30


def _objective(trial: optuna.Trial) -> float:
    op = trial.suggest_categorical("op", MIXED["op"].choices)
    depth = trial.suggest_int("depth", 1, 7, step=2)
    width = trial.suggest_int("width", 8, 64, log=True)
    ratio = trial.suggest_float("ratio", 0.0, 1.0, step=0.25)
    return {"none": 0.0, "skip": 1.0, "conv1": 2.0, "conv3": 3.0, "pool": 1.5}[op] + depth * ratio + math.log(width)


def _run(name: str, seed: int, n: int, nb201=None) -> list[dict]:
    space = nb201
    sampler = make_sampler(name, seed=seed, space=space, options=SamplerOptions(population_size=6, sample_size=3))
    study = optuna.create_study(sampler=sampler, direction="maximize")
    if nb201 is None:
        study.optimize(_objective, n_trials=n)
    else:
        dists = nb201.distributions()

        def nb201_objective(trial: optuna.Trial) -> float:
            arch = nb201.from_params({k: trial.suggest_categorical(k, d.choices) for k, d in dists.items()})
            return float(nb201.cost(arch, 10).params)

        study.optimize(nb201_objective, n_trials=n)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_sampler_is_seeded_and_stays_in_the_space(name: str) -> None:
    n = N_TRIALS.get(name, DEFAULT_N)
    first, again, other = _run(name, 1, n), _run(name, 1, n), _run(name, 2, n)
    assert first == again, f"{name}: the same seed gave different trials"
    assert first != other, f"{name}: different seeds gave the same trials"
    for params in first:
        assert set(params) == set(MIXED)
        for key, value in params.items():
            assert MIXED[key]._contains(MIXED[key].to_internal_repr(value)), f"{name}: {key}={value} out of the space"
    if name != "brute":
        # Every sampler but the exhaustive one explores more than a corner of the space.
        assert len({p["op"] for p in first}) >= 3


@pytest.mark.parametrize("name", [n for n in SAMPLERS.names() if n != "gp"])
def test_sampler_on_nb201_is_seeded_and_valid(name: str, nb201) -> None:
    first, again = _run(name, 3, 25, nb201), _run(name, 3, 25, nb201)
    assert first == again
    for params in first:
        nb201.from_params(params)  # raises on anything that is not a cell


def test_brute_force_visits_distinct_architectures(nb201) -> None:
    params = _run("brute", 0, 40, nb201)
    assert len({tuple(sorted(p.items())) for p in params}) == 40


def test_registry_flags_and_errors() -> None:
    assert sampler_spec("nsga2").constraints and sampler_spec("nsga2").multi_objective
    assert sampler_spec("re").constraints and not sampler_spec("re").multi_objective
    assert not sampler_spec("random").constraints
    with pytest.raises(ValueError, match=r"unknown sampler 'nsga3'.*Valid choices: brute, gp, nsga2"):
        sampler_spec("nsga3")


# --- regularised evolution ---------------------------------------------------------------------------


def _differences(a: dict, b: dict) -> int:
    return sum(a[k] != b[k] for k in a)


def test_re_children_are_one_edge_mutations_of_the_population(nb201) -> None:
    population, sample = 8, 3
    sampler = RegularizedEvolutionSampler(population_size=population, sample_size=sample, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    dists = nb201.distributions()

    def objective(trial: optuna.Trial) -> float:
        arch = nb201.from_params({k: trial.suggest_categorical(k, d.choices) for k, d in dists.items()})
        return float(nb201.cost(arch, 10).params)

    study.optimize(objective, n_trials=60)
    trials = study.trials
    for t in trials[population:]:
        # The parent is one of the newest `population` completed trials before this one.
        alive = trials[t.number - population : t.number]
        assert any(_differences(t.params, p.params) == 1 for p in alive), f"trial {t.number} is no one-edge child"
    # Selection pressure: the late population is better than the random start.
    start = sum(t.value for t in trials[:population]) / population
    late = sum(t.value for t in trials[-population:]) / population
    assert late > start


def test_re_prefers_feasible_parents(nb201) -> None:
    limit = 400_000
    sampler = RegularizedEvolutionSampler(
        population_size=8, sample_size=8, seed=0, constraints_func=lambda t: [t.user_attrs["excess"]]
    )
    study = optuna.create_study(sampler=sampler, direction="maximize")
    dists = nb201.distributions()

    def objective(trial: optuna.Trial) -> float:
        arch = nb201.from_params({k: trial.suggest_categorical(k, d.choices) for k, d in dists.items()})
        params = nb201.cost(arch, 10).params
        trial.set_user_attr("excess", params / limit - 1)
        return float(params)  # maximising size pushes against the limit

    study.optimize(objective, n_trials=80)
    late = study.trials[-30:]
    feasible = sum(t.user_attrs["excess"] <= 0 for t in late)
    # With the whole population in each tournament, the parent is the largest feasible cell: its one-edge
    # children stay mostly under the limit, while an unconstrained search would leave it for good.
    assert feasible >= 20, f"only {feasible} of the last 30 children are feasible"


def test_re_rejects_bad_options_and_several_objectives() -> None:
    with pytest.raises(ValueError, match="population of at least 2"):
        RegularizedEvolutionSampler(population_size=1)
    with pytest.raises(ValueError, match=r"sample size must be in 1\.\.4"):
        RegularizedEvolutionSampler(population_size=4, sample_size=5)
    study = optuna.create_study(sampler=RegularizedEvolutionSampler(seed=0), directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="optimises one objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)


def test_re_ages_by_completion_not_by_trial_number() -> None:
    """With parallel workers a trial that finishes late joins the population when it finishes."""
    space = {"x": CategoricalDistribution(tuple(range(10)))}
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    start = datetime(2026, 1, 1)
    finished = [5, 1, 2, 3, 4]  # trial 0 finishes last
    for number, minute in enumerate(finished):
        study.add_trial(optuna.trial.create_trial(params={"x": number}, distributions=space, value=float(number)))
        # Completion times set on the in-memory storage's record, as a slow worker would leave them.
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        study._storage._get_trial(trial_id).datetime_complete = start + timedelta(minutes=minute)
    assert [t.number for t in sampler.population(study, space)] == [3, 4, 0]


def test_re_tournament_draws_with_replacement(nb201) -> None:
    """Of a population of two, a tournament of two sometimes holds the weaker member twice (Real et al. 2019)."""
    space = {"a": CategoricalDistribution(tuple(range(5))), "b": CategoricalDistribution(tuple(range(5)))}
    weak, strong = {"a": 0, "b": 0}, {"a": 4, "b": 4}
    parents = []
    for seed in range(60):
        sampler = RegularizedEvolutionSampler(population_size=2, sample_size=2, seed=seed)
        study = optuna.create_study(sampler=sampler, direction="maximize")
        for params, value in ((weak, 0.0), (strong, 1.0)):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value))
        child = sampler.sample_relative(study, study.ask()._cached_frozen_trial, space)
        parents.append("weak" if _differences(child, weak) == 1 else "strong")
    # Without replacement the stronger member always wins; with it, P(weak twice) = 1/4.
    assert 5 <= parents.count("weak") <= 30


# Optuna's own sampler tests, as Optuna runs them on its samplers: regularised evolution is a
# single-objective sampler; its relative sampling starts once the population is full (below).
class TestRegularizedEvolutionBasic(BasicSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0)


class TestRegisteredRegularizedEvolution(BasicSamplerTestCase, SingleOnlySamplerTestCase):
    """The same cases through the registry, i.e. wrapped for per-trial seeding."""

    @pytest.fixture
    def sampler(self):
        return lambda: make_sampler("re", seed=0, space=None, options=SamplerOptions(population_size=4, sample_size=2))


class TestRegisteredRandomAndTPE(BasicSamplerTestCase):
    @pytest.fixture(params=["random", "tpe"])
    def sampler(self, request):
        return lambda: make_sampler(request.param, seed=0, space=None)


@pytest.mark.parametrize(
    "search_space",
    [
        {"x": FloatDistribution(-1.0, 1.0), "y": IntDistribution(3, 9, step=2)},
        {"x": FloatDistribution(1e-7, 1.0, log=True), "y": CategoricalDistribution((-1, -10, -100))},
        {"x": IntDistribution(1, 100, log=True), "y": CategoricalDistribution((1, 10, 100))},
    ],
)
def test_re_relative_sampling_after_its_warm_up(search_space) -> None:
    """Optuna's RelativeSamplerTestCase checks, once the population is full: values in range and of the right type."""
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(4):
        trial = study.ask(search_space)
        study.tell(trial, sum(float(v) for v in trial.params.values()))
    for _ in range(10):
        params = sampler.sample_relative(study, study.ask()._cached_frozen_trial, search_space)
        assert set(params) == set(search_space)
        for name, dist in search_space.items():
            value = params[name]
            assert dist._contains(dist.to_internal_repr(value))
            assert not isinstance(value, np.floating | np.integer)
            if isinstance(dist, IntDistribution):
                assert isinstance(value, int)
            elif isinstance(dist, FloatDistribution):
                assert isinstance(value, float)
