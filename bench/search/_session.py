"""One worker's part in a study: open the storage, create or join the study, run trials, write the run folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ..data import require_dataset, resolve_data_root
from ..devices import resolve_device
from ..scoring import ScoreCache, Scorer
from ._config import RunConfig
from ._objective import HAS_SET_CONSTRAINT, GroundTruthLookup, Objective, constraint_values, trial_result
from ._outputs import device_info, write_outputs
from ._runner import Counts, LoopResult, enqueue_retry, run_trials, worker_id
from ._samplers import SamplerOptions, make_sampler
from ._stages import Stages
from ._storage import OpenedStorage, absolute_url, default_storage, open_storage

CONFIG_ATTR = "bench_config"
RESULTS = Path("results")


def build_sampler(config: RunConfig, seed: int) -> optuna.samplers.BaseSampler:
    from spaces import get_space

    uses_function = bool(config.constraints()) and not HAS_SET_CONSTRAINT
    options = SamplerOptions(
        population_size=config.population_size,
        sample_size=config.sample_size,
        constraints_func=constraint_values if uses_function else None,
        extra=config.sampler_options,
        registry=config.hub_registry,
    )
    return make_sampler(config.sampler, seed=seed, space=get_space(config.space), options=options)


def create_or_load_study(
    config: RunConfig, opened: OpenedStorage, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """The study ``config.study_name``, created with ``config`` or checked against the config it was made with."""
    study = optuna.create_study(
        storage=opened.storage,
        sampler=sampler,
        study_name=config.study_name,
        directions=config.directions(),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        return study
    before = RunConfig.from_dict(stored)
    diffs = before.differences(config)
    if diffs:
        name = diffs[0]
        raise ValueError(
            f"study {config.study_name!r} in {opened.display} was created with {name}={getattr(before, name)!r}, "
            f"not {getattr(config, name)!r}; pick another --study-name or --storage"
        )
    if before.n_trials != config.n_trials:
        # The budget is the latest run's; the cache stays the one the study was created with.
        study.set_user_attr(CONFIG_ATTR, {**config.to_dict(), "cache": stored.get("cache", config.cache)})
    return study


def load_study_config(study_name: str, opened: OpenedStorage, *, wait: float = 0.0) -> RunConfig:
    """The config a study was created with, waiting up to ``wait`` seconds for it to appear."""
    deadline = time.monotonic() + wait
    while True:
        names = optuna.get_all_study_names(opened.storage)
        if study_name in names:
            study = optuna.load_study(study_name=study_name, storage=opened.storage)
            stored = study.user_attrs.get(CONFIG_ATTR)
            if stored is not None:
                return RunConfig.from_dict(stored)
            # bench run creates the study, then records its settings: it may be between the two.
            if time.monotonic() >= deadline:
                raise ValueError(f"study {study_name!r} in {opened.display} was not created by bench run")
        elif time.monotonic() >= deadline:
            known = ", ".join(sorted(names)) or "none"
            raise ValueError(
                f"no study {study_name!r} in {opened.display} (studies there: {known}); "
                "start it with bench run --storage ... --study-name ..."
            )
        time.sleep(1.0)


@dataclass
class Worker:
    """Everything one process needs to run trials of a study."""

    config: RunConfig
    opened: OpenedStorage
    study: optuna.Study
    objective: Objective
    ground_truth: GroundTruthLookup
    device: str
    sampler_seed: int
    started: datetime = field(default_factory=datetime.now)
    #: CPU and wall seconds of this process by stage: import, ground_truth, data, teacher, scoring, optuna.
    stages: Stages = field(default_factory=Stages)
    data_root: str | None = None

    def run(self, on_trial: Callable[[FrozenTrial, Counts], None] | None = None) -> LoopResult:
        """Run trials until the study's budget is counted; the objective's time is the scoring stage, the rest
        of the loop (sampler, storage, waiting for other workers) the Optuna stage."""
        objective = self.stages.timed("scoring", self.objective)
        with self.stages.time("optuna", less=("scoring",)):
            return run_trials(
                self.study, objective, n_trials=self.config.n_trials, opened=self.opened, on_trial=on_trial
            )

    def counts(self) -> Counts:
        storage = self.opened.storage
        return Counts.query(storage, storage.get_study_id_from_name(self.study.study_name))

    def remaining(self) -> int:
        """Trials the study's budget still leaves (0 when it is complete)."""
        return max(0, self.config.n_trials - self.counts().counted)

    def prepare(self) -> None:
        """The teacher and the proxy batch, built now rather than in the first trial: a missing or unreadable
        dataset or teacher file is then an error before any trial starts, and the time is its own."""
        scorer = self.objective.scorer
        with self.stages.time("teacher"):
            scorer.teacher()
        with self.stages.time("data"):
            scorer.inputs()
        with self.stages.time("teacher"):
            scorer.inputs_for(self.config.proxy)  # the proxy's teacher-side work on the batch

    def manifest(self, result: LoopResult, finished: datetime) -> dict[str, Any]:
        """The study's part of ``manifest.json`` and this run's record (see :func:`write_outputs`)."""
        counts = self.counts()
        mine = set(result.trials)
        trials = [t for t in self.study.get_trials(deepcopy=False) if t.number in mine]
        cached = sum(bool(trial_result(t).get("cached")) for t in trials)
        run = {
            "worker": worker_id(),
            "started": self.started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "wall_seconds": (finished - self.started).total_seconds(),
            "device": device_info(self.device),
            "data_root": self.data_root,
            "trials": {
                "counted": counts.counted,
                "failed": counts.failed,
                "this_run": len(result.trials),
                "recovered_from_dead_workers": result.recovered,
            },
            "scores": {"computed": len(trials) - cached, "from_cache": cached},
            "seconds": {
                "objective": result.objective_seconds,
                "sampler_and_storage": result.overhead_seconds,
                "waiting_for_other_workers": result.waited_seconds,
            },
            "stages": self.stages.as_dict(),
        }
        study = {
            "study": self.study.study_name,
            "storage": self.opened.display,
            "score_cache": absolute_url(self.config.cache),
            "config": self.config.to_dict(),
            "seeds": {"sampler": self.sampler_seed, "score": self.config.score_seed},
            "directions": self.config.directions(),
            "ground_truth": self.ground_truth.sources,
        }
        return {**study, "run": run}

    def write(self, out_dir: Path, result: LoopResult) -> tuple[Any, Any]:
        """Write the run folder; a run that ran no trial (the study was complete) adds no record to the
        manifest's history."""
        manifest = self.manifest(result, datetime.now())
        if not result.trials:
            manifest.pop("run")
        return write_outputs(out_dir, self.study, self.config, self.ground_truth, manifest)


def out_dir_for(config: RunConfig, out: Path | None) -> Path:
    """The run folder, absolute: ``out``, else ``results/<study name>`` under the current folder."""
    return (out if out is not None else RESULTS / config.study_name).expanduser().resolve()


def start_worker(
    config: RunConfig,
    *,
    storage: str | None,
    out_dir: Path,
    device: str = "auto",
    data_root: str | None = None,
    sampler_seed: int | None = None,
    scorers: dict[Any, Scorer] | None = None,
    opened: OpenedStorage | None = None,
) -> Worker:
    """Open the storage and the study (creating it with ``config`` if new) and prepare the objective.

    The dataset is looked for before the storage is touched; where the study has trials left to run, the
    teacher and the proxy batch are built before its first trial (:meth:`Worker.prepare`). ``scorers``
    shares scorers (their batch and teacher) between studies of one process, e.g. a sweep.
    """
    from proxies import get_proxy
    from spaces import get_space

    stages = Stages.since_process_start("import")
    config = config.with_images(data_root)
    if getattr(get_space(config.space), "input_kind", "image") == "image" and get_proxy(config.proxy).needs_data:
        # before a study or a cache is made for a run that cannot score
        require_dataset(config.images or config.dataset, data_root)
    scoring = config.scoring(device=resolve_device(device), data_root=data_root)
    scorer = _scorer(config, scoring, scorers)  # the cache is opened before the storage is touched
    if config.teacher_weights:
        with stages.time("teacher"):
            scorer.teacher()  # weights that do not fit the teacher are refused before any study exists
    with stages.time("optuna"):
        opened = opened or open_storage(storage or default_storage(out_dir), on_stale=enqueue_retry)
        seed = config.seed if sampler_seed is None else sampler_seed
        study = create_or_load_study(config, opened, build_sampler(config, seed))
    recorded = study_cache(study)
    if recorded and recorded != config.cache and config.uses_default_cache():
        # A run that names no cache uses the study's, wherever it runs.
        config = RunConfig.from_dict({**config.to_dict(), "cache": recorded})
        scorer = _scorer(config, scoring, scorers)
    with stages.time("ground_truth"):
        ground_truth = GroundTruthLookup.load(config.space, config.dataset, data_root)
    objective = Objective(config, scorer, ground_truth)
    worker = Worker(
        config, opened, study, objective, ground_truth, scoring.device, seed, stages=stages,
        data_root=str(Path(data_root or resolve_data_root()).expanduser().resolve()),
    )  # fmt: skip
    if worker.remaining():
        worker.prepare()
    return worker


def _scorer(config: RunConfig, scoring: Any, scorers: dict[Any, Scorer] | None) -> Scorer:
    """The scorer of ``config``'s proxy and cache, shared through ``scorers`` where given."""
    scorer = (scorers or {}).get((scoring, config.proxy, config.cache))
    if scorer is None:
        scorer = Scorer(scoring, [config.proxy], cache=ScoreCache(config.cache))
        if scorers is not None:
            scorers[(scoring, config.proxy, config.cache)] = scorer
    return scorer


def study_cache(study: optuna.Study) -> str | None:
    """The score cache recorded in the study's config (absolute since it is made so on creation)."""
    return (study.user_attrs.get(CONFIG_ATTR) or {}).get("cache")


def join_worker(
    study_name: str,
    *,
    storage: str,
    device: str = "auto",
    data_root: str | None = None,
    cache: str | None = None,
    wait: float = 0.0,
) -> Worker:
    """A worker for an existing study, with the config it was created with: its score cache is the one the
    study records (absolute, made so when the study was created), unless ``cache`` names another.

    It shares the study's sampler seed: each trial's proposal is seeded by its slot, so workers that start
    trials of other slots propose apart.
    """
    opened = open_storage(storage, on_stale=enqueue_retry)
    config = load_study_config(study_name, opened, wait=wait)
    if cache:
        config = RunConfig.from_dict({**config.to_dict(), "cache": cache})
    return start_worker(
        config,
        storage=storage,
        out_dir=Path("."),
        device=device,
        data_root=data_root,
        opened=opened,
    )
