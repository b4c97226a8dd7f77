"""One training-free NAS problem of diswot-bench: a search space scored by a proxy, as an OptunaHub problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import optunahub
import pandas as pd

from bench.scoring import ScoreCache, Scorer, ScoreRecord, read_pack
from bench.search import OBJECTIVES, GroundTruthLookup, RunConfig
from proxies import proxy_version

_DIRECTIONS = {"maximize": optuna.study.StudyDirection.MAXIMIZE, "minimize": optuna.study.StudyDirection.MINIMIZE}


class Problem(optunahub.benchmarks.BaseProblem):
    """Maximise a training-free proxy's score over a NAS search space (diswot-bench).

    One problem per (space, proxy, dataset, teacher): ``search_space`` is the space's Optuna distributions,
    ``evaluate`` the proxy's score of the architecture the parameters describe, exactly as ``bench score`` and
    ``bench run`` compute it. Scores come from a score pack (``pack``, read only), a score cache (``cache``, a
    database URL shared with the suite's commands) or are computed on a miss (and kept in the cache). With
    ``max_params``/``max_flops`` each trial gets constraints (feasible when <= 0: the relative excess over the
    limit); ``objectives=("score", "params")`` adds the cost as a second, minimised objective. An architecture
    that is not a valid network, or whose score failed, prunes its trial with the reason.

    Each trial's user attributes name its architecture (``arch``, ``index``) and its ground truth
    (``val_acc``/``test_acc`` where the suite has it), for analysis; the sampler never sees them.
    """

    def __init__(
        self,
        space: str = "nb201",
        proxy: str = "diswot",
        dataset: str | None = None,
        teacher: str | None = None,
        *,
        objectives: Sequence[str] = ("score",),
        max_params: float | None = None,
        max_flops: float | None = None,
        pack: str | Path | None = None,
        cache: str | None = None,
        batch_size: int = 64,
        score_seed: int = 0,
        init: str = "default",
        teacher_weights: str | None = None,
        include_invalid: bool = False,
        device: str = "cpu",
        data_root: str | None = None,
    ) -> None:
        # The suite's checks of a run's settings; its sampler is the caller's (tpe: one that takes every setting).
        config = RunConfig(
            space=space, proxy=proxy, sampler="tpe", dataset=dataset or "", objectives=tuple(objectives),
            max_params=max_params, max_flops=max_flops, teacher=teacher, teacher_weights=teacher_weights,
            batch_size=batch_size, score_seed=score_seed, init=init, include_invalid=include_invalid,
        ).resolved()  # fmt: skip
        self.config = config.with_images(data_root)
        self.scorer = Scorer(
            self.config.scoring(device=device, data_root=data_root),
            [proxy],
            cache=ScoreCache(cache) if cache else None,
        )
        self.space = self.scorer.space
        self.ground_truth = GroundTruthLookup.load(self.config.space, self.config.dataset, data_root)
        self.packed = _pack_records(Path(pack), self.scorer.config_key, proxy) if pack is not None else {}
        self._scored: dict[str, ScoreRecord] = {}

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return self.space.distributions()

    @property
    def directions(self) -> list[optuna.study.StudyDirection]:
        return [_DIRECTIONS[OBJECTIVES[name]] for name in self.config.objectives]

    def arch(self, params: dict[str, Any]) -> str:
        """The architecture string of ``params``."""
        return self.space.to_str(self.space.from_params(params))

    def score(self, params: dict[str, Any]) -> ScoreRecord:
        """The proxy's record of the architecture: from the pack, from this process, the cache or computed."""
        arch = self.space.from_params(params)
        arch_str = self.space.to_str(arch)
        record = self.packed.get(arch_str) or self._scored.get(arch_str)
        if record is None:
            record = self._scored[arch_str] = self.scorer.score(arch, [self.config.proxy])[self.config.proxy]
        return record

    def evaluate(self, params: dict[str, Any]) -> float | list[float]:
        arch = self.space.from_params(params)
        invalid = None if self.config.include_invalid else self.space.invalid_reason(arch)
        if invalid is not None:
            raise optuna.TrialPruned(f"invalid architecture: {invalid}")
        record = self.score(params)
        if not record.ok:
            raise optuna.TrialPruned(f"score {record.status}: {record.error}")
        cost = self.space.cost_on(arch, self.config.dataset)
        values = [float(record.score)] + [float(getattr(cost, name)) for name in self.config.objectives[1:]]
        return values[0] if len(values) == 1 else values

    def evaluate_constraints(self, params: dict[str, Any]) -> dict[str, float]:
        limits = self.config.constraints()
        if not limits:
            return {}
        cost = self.space.cost_on(self.space.from_params(params), self.config.dataset)
        return {f"max_{name}": getattr(cost, name) / limit - 1.0 for name, limit in limits.items()}

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        try:
            return super().__call__(trial)
        finally:  # pruned trials too say what they were
            if len(trial.params) == len(self.search_space):
                arch = self.space.from_params(trial.params)
                trial.set_user_attr("arch", self.space.to_str(arch))
                trial.set_user_attr("index", _index(self.space, arch))
                for metric, value in self.ground_truth.query(self.space.to_str(arch)).items():
                    if value is not None:
                        trial.set_user_attr(metric, value)


def _index(space: Any, arch: Any) -> int | None:
    try:
        return space.index(arch)
    except TypeError:  # an infinite space
        return None


def _pack_records(path: Path, config: str, proxy: str) -> dict[str, ScoreRecord]:
    """The pack's records of one scoring config and proxy, by architecture; an error where it holds none."""
    manifest, frame = read_pack(path)
    rows = frame[(frame["config"] == config) & (frame["proxy"] == proxy)]
    if rows.empty:
        held = sorted({f"{r.proxy} on {r.space}/{r.dataset} ({r.device}, batch {r.batch_size})"
                       for r in frame.itertuples()})  # fmt: skip
        raise ValueError(
            f"score pack {path} holds no {proxy} scores of this problem's settings (config {config}); it holds "
            + "; ".join(held)
        )
    if manifest["proxies"].get(proxy) != proxy_version(proxy):
        raise ValueError(f"score pack {path} holds {proxy} scores of another version of the proxy; they would differ")
    return {row.arch: _record(row, config) for row in rows.itertuples(index=False)}


def _record(row: Any, config: str) -> ScoreRecord:
    def missing(value: Any) -> bool:
        return bool(pd.isna(value))

    return ScoreRecord(
        arch=row.arch,
        proxy=row.proxy,
        score=None if missing(row.score) else float(row.score),
        seconds=float(row.seconds),
        status=row.status,
        error="" if missing(row.error) else str(row.error),
        config=config,
        index=None if missing(row.index) else int(row.index),
        cached=True,
    )
