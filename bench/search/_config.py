"""What defines a search run: the study's identity, its budget and how its scores are made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from proxies import get_proxy
from spaces import SearchSpace, get_space

from ..data import check_dataset
from ..databases import absolute_database_url
from ..scoring import ScoringConfig
from ._hub import HubName, is_hub
from ._samplers import SAMPLERS, SamplerSpec, sampler_spec

#: Objective name -> Optuna direction. The proxy score is always the first objective.
OBJECTIVES = {"score": "maximize", "params": "minimize", "flops": "minimize"}
DEFAULT_N_TRIALS = 100
#: The score cache of a run that names none: ``results/scores.db`` under the folder the study is created in,
#: made absolute then and recorded in the study, so that every later run and worker uses that one file.
DEFAULT_CACHE = "sqlite:///results/scores.db"
# Multi-objective by default where the sampler is made for it: the proxy against the student's size.
_DEFAULT_OBJECTIVES = {"nsga2": ("score", "params")}


@dataclass(frozen=True)
class RunConfig:
    """One study: a space searched with one proxy and one sampler, on one dataset, with one seed.

    ``seed`` seeds the sampler (each trial's proposal is seeded from it and the trial's slot, see
    ``TrialSeededSampler``). ``score_seed`` seeds the scores (the data batch and each network's
    initialisation) and is kept apart, so that studies with different sampler seeds share cached
    scores. ``objectives`` empty means the sampler's default; ``teacher`` None means the space's
    default teacher (``bench.teachers.default_teacher``) where the proxy needs one.
    """

    space: str = "nb201"
    proxy: str = "diswot"
    sampler: str = "nsga2"
    dataset: str = "cifar10"
    n_trials: int = DEFAULT_N_TRIALS
    seed: int = 0
    objectives: tuple[str, ...] = ()
    max_params: float | None = None
    max_flops: float | None = None
    teacher: str | None = None
    teacher_weights: str | None = None
    batch_size: int = 64
    score_seed: int = 0
    init: str = "default"
    population_size: int | None = None
    sample_size: int | None = None
    cache: str = DEFAULT_CACHE
    study_name: str = ""
    #: Score invalid architectures (e.g. NB201 cells whose input never reaches the output) like any other;
    #: by default their trials are pruned with the reason and never scored.
    include_invalid: bool = False
    #: The dataset whose images make the proxy batch where ``dataset``'s are not at hand (set when the study
    #: is created, from what the data root holds; see ``bench.data.images_for``). None: ``dataset``'s own.
    images: str | None = None
    #: Keyword arguments of the sampler's constructor (``--sampler-option``; OptunaHub samplers).
    sampler_options: dict[str, Any] = field(default_factory=dict)
    #: The local OptunaHub registry folder a ``hub:`` sampler is loaded from (absolute, for workers started
    #: elsewhere); None: the online registry.
    hub_registry: str | None = None

    # --- resolution and validation ------------------------------------------------------------------

    def resolved(self) -> RunConfig:
        """This config with defaults filled in and every field checked; ValueError naming the problem."""
        space = get_space(self.space)
        if not self.dataset:  # the space's first dataset, e.g. cifar10 for nb201
            return dataclasses.replace(self, dataset=next(iter(space.num_classes))).resolved()
        if self.hub_registry is not None and not is_hub(self.sampler):
            raise ValueError(f"--hub-registry applies to hub: samplers, not {self.sampler!r}")
        spec = sampler_spec(self.sampler, registry=self.hub_registry)
        _check_sampler_options(self.sampler, spec, self.sampler_options)
        proxy = get_proxy(self.proxy)
        if getattr(space, "input_kind", "image") == "image":  # a text space lists its token datasets
            check_dataset(self.dataset)
        if self.dataset not in space.num_classes:
            raise ValueError(
                f"space {self.space!r} has no dataset {self.dataset!r}. Valid choices: {', '.join(space.num_classes)}"
            )
        if self.n_trials < 1:
            raise ValueError(f"--n-trials must be at least 1, got {self.n_trials}")
        objectives = self.objectives or _DEFAULT_OBJECTIVES.get(self.sampler, ("score",))
        _check_objectives(objectives)
        if len(objectives) > 1 and not spec.multi_objective:
            raise ValueError(
                f"sampler {self.sampler!r} optimises one objective, got --objectives {','.join(objectives)}; "
                "use --objectives score or a multi-objective sampler (nsga2, tpe, gp, random, qmc, brute)"
            )
        if self.constraints() and not spec.constraints:
            raise ValueError(
                f"sampler {self.sampler!r} cannot honour constraints (--max-params/--max-flops); "
                "use one of nsga2, tpe, gp, re"
            )
        self._check_constraints_possible(space)
        if self.sampler == "brute":
            try:
                size = len(space)
            except TypeError:
                raise ValueError(f"sampler 'brute' needs a finite space; {self.space!r} is not") from None
            if self.n_trials > size:
                raise ValueError(f"--n-trials {self.n_trials} exceeds the {size:,} architectures 'brute' can visit")
        population = _sampler_option(self.sampler, spec, "population_size", self.population_size)
        sample = _sampler_option(self.sampler, spec, "sample_size", self.sample_size)
        teacher = self.teacher
        if proxy.needs_teacher:
            from ..teachers import TEACHERS, default_teacher

            teacher = TEACHERS.check(teacher or default_teacher(self.space))
        else:
            teacher = None  # a teacher-free score does not depend on it: keep it out of the score's key
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be positive, got {self.batch_size}")
        from proxies import INITS

        INITS.check(self.init)
        name = self.study_name or self.default_study_name(objectives)
        weights = self.teacher_weights if teacher else None
        return dataclasses.replace(
            self, objectives=tuple(objectives), teacher=teacher, teacher_weights=weights, study_name=name,
            population_size=population, sample_size=sample, cache=absolute_database_url(self.cache),
        )  # fmt: skip

    def default_study_name(self, objectives: tuple[str, ...] | None = None) -> str:
        sampler = HubName.parse(self.sampler).slug() if is_hub(self.sampler) else self.sampler
        parts = [self.space, self.dataset, self.proxy, sampler, "+".join(objectives or self.objectives)]
        if self.max_params is not None:
            parts.append(f"maxparams{self.max_params:g}")
        if self.max_flops is not None:
            parts.append(f"maxflops{self.max_flops:g}")
        if self.include_invalid:
            parts.append("withinvalid")
        parts.append(f"s{self.seed}")
        return "-".join(parts)

    def constraints(self) -> dict[str, float]:
        """Cost name -> upper limit, for the limits that are set."""
        limits = {"params": self.max_params, "flops": self.max_flops}
        return {name: float(limit) for name, limit in limits.items() if limit is not None}

    def _check_constraints_possible(self, space: SearchSpace) -> None:
        limits = self.constraints()
        for name, limit in limits.items():
            if limit <= 0:
                raise ValueError(f"--max-{name} must be positive, got {limit:g}")
        if not limits:
            return
        try:
            archs = list(space)
        except TypeError:
            return  # an infinite space: nothing to enumerate, the sampler finds out
        costs = [space.cost_on(a, self.dataset) for a in archs]
        for name, limit in limits.items():
            smallest = min(getattr(c, name) for c in costs)
            if smallest > limit:
                raise ValueError(
                    f"--max-{name} {limit:,.0f} is below the smallest architecture of {self.space!r} on "
                    f"{self.dataset} ({smallest:,} {name}): no architecture satisfies it"
                )
        if len(limits) > 1 and not any(all(getattr(c, n) <= v for n, v in limits.items()) for c in costs):
            raise ValueError(f"no architecture of {self.space!r} satisfies --max-params and --max-flops together")

    def directions(self) -> list[str]:
        return [OBJECTIVES[o] for o in self.objectives]

    def scoring(self, *, device: str = "cpu", data_root: str | None = None) -> ScoringConfig:
        return ScoringConfig(
            space=self.space,
            dataset=self.dataset,
            batch_size=self.batch_size,
            seed=self.score_seed,
            teacher=self.teacher,
            teacher_weights=self.teacher_weights,
            init=self.init,
            device=device,
            data_root=data_root,
            images=self.images,
        )

    # --- storage in the study ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        # A study stored before invalid architectures were skipped scored every one of them.
        values.setdefault("include_invalid", True)
        values["objectives"] = tuple(values.get("objectives", ()))
        return cls(**values)

    def uses_default_cache(self) -> bool:
        """Whether the cache is the default one of the current folder (the run named none)."""
        return absolute_database_url(self.cache) == absolute_database_url(DEFAULT_CACHE)

    def with_images(self, data_root: str | None) -> RunConfig:
        """This config with the images of its proxy batch chosen from what ``data_root`` holds (image spaces)."""
        if self.images is not None or getattr(get_space(self.space), "input_kind", "image") != "image":
            return self
        from ..data import images_for

        images = images_for(self.dataset, data_root)
        return dataclasses.replace(self, images=None if images == self.dataset else images)

    def differences(self, other: RunConfig) -> list[str]:
        """The fields (besides the budget and where the cache and a hub sampler's registry are) in which two configs
        of one study differ."""
        ignore = {"n_trials", "cache", "hub_registry"}
        return [
            f.name
            for f in dataclasses.fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]


def _check_sampler_options(sampler: str, spec: SamplerSpec, options: dict[str, Any]) -> None:
    """An error naming the first ``--sampler-option`` the sampler does not take."""
    if spec.options is None:
        return
    for key in options:
        if key not in spec.options:
            if not spec.options:
                raise ValueError(f"sampler {sampler!r} takes no --sampler-option; it applies to hub: samplers")
            raise ValueError(f"sampler {sampler!r} takes no option {key!r}. Valid choices: {', '.join(spec.options)}")


def _sampler_option(sampler: str, spec: SamplerSpec, field: str, value: int | None) -> int | None:
    """``value`` of a sampler option, or the sampler's default; an error for a sampler without it."""
    default = getattr(spec, field)
    if value is None:
        return default
    flag = "--population" if field == "population_size" else "--sample-size"
    if default is None:
        having = [n for n in SAMPLERS.names() if getattr(sampler_spec(n), field) is not None]
        raise ValueError(f"sampler {sampler!r} takes no {flag}; it applies to {', '.join(having)}")
    if value < 1:
        raise ValueError(f"{flag} must be positive, got {value}")
    return value


def _check_objectives(objectives: tuple[str, ...] | list[str]) -> None:
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective {unknown[0]!r}. Valid choices: {', '.join(OBJECTIVES)}")
    if not objectives or objectives[0] != "score" or "score" in objectives[1:]:
        raise ValueError(
            f"--objectives must start with score once, e.g. score or score,params; got {','.join(objectives)}"
        )
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"--objectives lists an objective twice: {','.join(objectives)}")


def parse_objectives(text: str | None) -> tuple[str, ...]:
    """``"score,params"`` -> ``("score", "params")``; empty or None -> the sampler's default."""
    if not text:
        return ()
    objectives = tuple(part.strip() for part in text.split(",") if part.strip())
    _check_objectives(objectives)
    return objectives
