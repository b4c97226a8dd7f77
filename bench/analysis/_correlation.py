"""Rank correlation between proxy scores and ground truth, with bootstrap confidence intervals.

For one proxy on one set of n architectures (scores x, ground truth y) the metrics are:

- ``kendall``: Kendall's tau-b, ``spearman``: Spearman's rho, ``pearson``: Pearson's r (as scipy.stats);
- ``topK`` (K = 10 and 5 by default): precision of the proxy's top K%: of the m = ceil(n K / 100)
  architectures the proxy ranks highest, the fraction that are among the m truly best;
- ``best_pct``: where the proxy's single best architecture stands in the ground truth, as
  ``scipy.stats.percentileofscore(y, y[argmax x], kind="weak")``: the percentage of architectures
  that are no better than it (100 = the truly best).

Ties are broken by the architectures' order (the space's index), so the result is deterministic.
Each metric gets a bootstrap confidence interval from ``scipy.stats.bootstrap`` with paired resampling
of architectures. Every cell draws its resamples from a generator seeded with the same seed, so all
proxies on the same architectures are judged on the same resamples.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..ground_truth import GroundTruth
from ..scoring import FAILED, NONFINITE, OK
from ._scores import Pairing, ScoreRun, pair_runs, select_archs

DEFAULT_TOP: tuple[float, ...] = (10.0, 5.0)
CI_METHODS = ("percentile", "basic", "BCa")
# Resampled arrays per batch are kept under this many elements, to bound memory on the full space.
_BATCH_ELEMENTS = 4_000_000


def metric_names(top: Sequence[float] = DEFAULT_TOP) -> list[str]:
    return ["kendall", "spearman", "pearson", *[f"top{k:g}" for k in top], "best_pct"]


@dataclass(frozen=True)
class BootstrapSettings:
    """How the confidence intervals are made. ``n_resamples=0`` computes no interval."""

    n_resamples: int = 1000
    confidence: float = 0.95
    method: str = "percentile"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 0:
            raise ValueError(f"n_resamples must be >= 0, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")
        if self.method not in CI_METHODS:
            raise ValueError(f"unknown bootstrap method {self.method!r}. Valid choices: {', '.join(CI_METHODS)}")


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    # Normalise first, as scipy.stats.pearsonr does, to keep the product well scaled.
    xn = np.linalg.norm(xc, axis=-1, keepdims=True)
    yn = np.linalg.norm(yc, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sum((xc / xn) * (yc / yn), axis=-1)
    return np.clip(r, -1.0, 1.0)


def _kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    flat_x = x.reshape(-1, x.shape[-1])
    flat_y = y.reshape(-1, y.shape[-1])
    taus = [stats.kendalltau(a, b).statistic for a, b in zip(flat_x, flat_y)]
    return np.asarray(taus, dtype=float).reshape(x.shape[:-1])


def _top_precision(x: np.ndarray, y: np.ndarray, percent: float) -> np.ndarray:
    n = x.shape[-1]
    m = max(1, math.ceil(n * percent / 100))
    by_proxy = np.argsort(-x, axis=-1, kind="stable")[..., :m]
    by_truth = np.argsort(-y, axis=-1, kind="stable")[..., :m]
    truly_top = np.zeros(y.shape, dtype=bool)
    np.put_along_axis(truly_top, by_truth, True, axis=-1)
    return np.take_along_axis(truly_top, by_proxy, axis=-1).mean(axis=-1)


def _best_percentile(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pick = np.argmax(x, axis=-1)[..., None]  # first maximum: the lowest index among ties
    picked_truth = np.take_along_axis(y, pick, axis=-1)
    return 100.0 * np.mean(y <= picked_truth, axis=-1)


def correlation_statistics(
    score: np.ndarray, truth: np.ndarray, *, top: Sequence[float] = DEFAULT_TOP, axis: int = -1
) -> np.ndarray:
    """All metrics of :func:`metric_names` at once; leading axes are batches (vectorised for the bootstrap)."""
    x = np.moveaxis(np.asarray(score, dtype=float), axis, -1)
    y = np.moveaxis(np.asarray(truth, dtype=float), axis, -1)
    with warnings.catch_warnings():
        # A resample can be constant by chance; its correlation is then NaN, which the interval shows.
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        values = [
            _kendall(x, y),
            _pearson(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1)),
            _pearson(x, y),
            *[_top_precision(x, y, k) for k in top],
            _best_percentile(x, y),
        ]
    return np.stack(values)


def _bootstrap_kwargs(settings: BootstrapSettings, n: int) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "paired": True,
        "vectorized": True,
        "n_resamples": settings.n_resamples,
        "confidence_level": settings.confidence,
        "method": settings.method,
        "batch": max(1, _BATCH_ELEMENTS // max(n, 1)),
    }
    # scipy >= 1.15 names the generator ``rng``; older releases call it ``random_state``.
    generator = np.random.default_rng(settings.seed)
    if "rng" in inspect.signature(stats.bootstrap).parameters:
        kwargs["rng"] = generator
    else:
        kwargs["random_state"] = generator
    return kwargs


@dataclass(frozen=True)
class MetricResult:
    value: float
    low: float
    high: float


def correlation_metrics(
    score: np.ndarray,
    truth: np.ndarray,
    *,
    top: Sequence[float] = DEFAULT_TOP,
    bootstrap: BootstrapSettings | None = None,
) -> dict[str, MetricResult]:
    """Every metric with its bootstrap interval (NaN bounds when ``n_resamples`` is 0).

    Raises ValueError for fewer than 3 architectures or scores/truth that do not vary (no ranking).
    """
    x = np.asarray(score, dtype=float)
    y = np.asarray(truth, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"score and truth must be 1-D and of one length, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"a correlation needs at least 3 architectures, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores and ground truth must be finite (failed scores are excluded before this point)")
    if np.ptp(x) == 0:
        raise ValueError("every architecture has the same score: the proxy ranks nothing")
    if np.ptp(y) == 0:
        raise ValueError("every architecture has the same ground truth: there is nothing to rank")
    names = metric_names(top)
    point = correlation_statistics(x, y, top=top)
    settings = bootstrap or BootstrapSettings()
    if settings.n_resamples == 0:
        return {name: MetricResult(float(v), math.nan, math.nan) for name, v in zip(names, point)}

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return correlation_statistics(a, b, top=top, axis=axis)

    with warnings.catch_warnings():
        # Top-k precision of a very good proxy can be 1 in every resample; the interval is then [1, 1].
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((x, y), statistic, **_bootstrap_kwargs(settings, len(x)))
    low = np.atleast_1d(result.confidence_interval.low)
    high = np.atleast_1d(result.confidence_interval.high)
    return {name: MetricResult(float(v), float(lo), float(hi)) for name, v, lo, hi in zip(names, point, low, high)}


def aggregate_runs(table: pd.DataFrame, *, top: Sequence[float] = DEFAULT_TOP) -> pd.DataFrame:
    """Mean, sample standard deviation, min and max of each metric over runs (e.g. scoring seeds).

    ``table`` is the output of :func:`bench.analysis.correlation_table`; one row comes out per
    (dataset, ground truth, cells, proxy), with ``runs`` the number of runs that had a value.
    """
    keys = [k for k in ("dataset", "ground_truth", "cells", "proxy") if k in table.columns]
    rows = []
    for key, group in table.groupby(keys, sort=False):
        row: dict[str, object] = dict(zip(keys, key))
        row["runs"] = int(group["n"].notna().sum())
        row["n_min"] = int(group["n"].min())
        row["n_max"] = int(group["n"].max())
        for name in metric_names(top):
            values = group[name].dropna().to_numpy(float)
            row[f"{name}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{name}_min"] = float(values.min()) if len(values) else math.nan
            row[f"{name}_max"] = float(values.max()) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TruthSource:
    """One ground truth column: a source, the metric read from it and how tables name it."""

    label: str
    ground_truth: GroundTruth
    metric: str

    def values(self, dataset: str) -> pd.Series:
        return self.ground_truth.accuracy(dataset, self.metric)


#: Which architectures a correlation row covers: every scored one, or only those the space calls valid
#: networks (NB201: the input reaches the output; 341 of its 15,625 cells do not).
CELLS = ("all", "valid")


def cell_views(connected_only: bool = False) -> tuple[str, ...]:
    """The views a correlation reports: both, or only the valid cells where the user asked for those alone."""
    return ("valid",) if connected_only else CELLS


@dataclass(frozen=True)
class Pair:
    """The paired data of one correlation: a proxy's scores on a run's architectures and their ground truth."""

    run: ScoreRun
    source: TruthSource
    proxy: str
    cells: str
    archs: list[str]
    score: np.ndarray
    truth: np.ndarray
    #: Whether each of ``archs`` is a valid network of the space.
    valid: np.ndarray
    counts: dict[str, int]


def iter_pairs(
    runs: Sequence[ScoreRun],
    truths: Sequence[TruthSource],
    *,
    connected_only: bool = False,
    unique: bool = False,
    pairing: Pairing | None = None,
) -> Iterator[Pair]:
    """Each (run, ground truth, cells, proxy) with its architectures in the space's order.

    The architectures are those common to every run (:func:`~bench.analysis.pair_runs`), so rows of
    different runs are paired by architecture; ``cells`` is ``all`` or ``valid`` (:data:`CELLS`; only
    ``valid`` with ``connected_only``). Only rows with status ``ok`` are paired; ``counts`` says how many of
    the selected architectures have no row for the proxy (``n_missing``), failed (``n_failed``), had a
    score that is not finite (``n_nonfinite``) or are missing from the ground truth (``n_no_truth``), and
    how many identical repeated rows of the proxy the file had (``n_duplicates``).
    """
    if not truths:
        raise ValueError("no ground truth given")
    pairing = pairing or pair_runs(runs)
    space = runs[0].space
    views = {
        cells: select_archs(pairing.common, space=space, connected_only=cells == "valid", unique=unique)
        for cells in cell_views(connected_only)
    }
    valid = set(views["valid"]) if not unique else set(select_archs(pairing.common, space=space, connected_only=True))
    # One proxy order for every run (the order in which the files name them), so that their rows line up.
    order = list(dict.fromkeys(p for run in runs for p in run.frame["proxy"].astype(str)))
    for run in runs:
        proxies = [p for p in order if p in set(run.frame["proxy"].astype(str))]
        for source in truths:
            truth = source.values(run.dataset)
            for cells, selected in views.items():
                position = pd.Series(np.arange(len(selected)), index=selected)
                frame = run.frame[run.frame["arch"].isin(position.index)]
                for proxy in proxies:
                    part = frame[frame["proxy"].astype(str) == proxy]
                    part = part.assign(_order=position.loc[part["arch"]].to_numpy()).sort_values("_order")
                    status = part["status"].astype(str)
                    ok = part[status == OK]
                    has_truth = ok["arch"].isin(truth.index)
                    ok = ok[has_truth]
                    yield Pair(
                        run=run,
                        source=source,
                        proxy=proxy,
                        cells=cells,
                        archs=ok["arch"].tolist(),
                        score=ok["score"].to_numpy(float),
                        truth=truth.loc[ok["arch"]].to_numpy(float),
                        valid=ok["arch"].isin(valid).to_numpy(),
                        counts={
                            "n_missing": len(selected) - len(part),
                            "n_failed": int((status == FAILED).sum()),
                            "n_nonfinite": int((status == NONFINITE).sum()),
                            "n_no_truth": int((~has_truth).sum()),
                            "n_duplicates": run.duplicates.get(proxy, 0),
                        },
                    )


def correlation_table(
    runs: Sequence[ScoreRun],
    truths: Sequence[TruthSource],
    *,
    connected_only: bool = False,
    unique: bool = False,
    top: Sequence[float] = DEFAULT_TOP,
    bootstrap: BootstrapSettings | None = None,
    pairing: Pairing | None = None,
) -> pd.DataFrame:
    """One row per (run, dataset, ground truth, cells, proxy): counts, each metric and its interval.

    ``cells`` is ``all`` or ``valid`` (see :func:`iter_pairs`). A proxy that cannot be correlated (too few
    architectures, constant scores) gets NaN metrics and a ``note`` saying why.
    """
    names = metric_names(top)
    rows = []
    pairs = iter_pairs(runs, truths, connected_only=connected_only, unique=unique, pairing=pairing)
    for pair in pairs:
        row: dict[str, object] = {
            "run": pair.run.label,
            "dataset": pair.run.dataset,
            "ground_truth": pair.source.label,
            "cells": pair.cells,
            "proxy": pair.proxy,
            "n": len(pair.score),
            **pair.counts,
        }
        try:
            metrics = correlation_metrics(pair.score, pair.truth, top=top, bootstrap=bootstrap)
        except ValueError as err:
            metrics = {name: MetricResult(math.nan, math.nan, math.nan) for name in names}
            row["note"] = str(err)
        else:
            row["note"] = ""
        for name in names:
            row[name] = metrics[name].value
            row[f"{name}_low"] = metrics[name].low
            row[f"{name}_high"] = metrics[name].high
        if len(pair.score):
            best = int(np.argmax(pair.score))
            row["best_arch"] = pair.archs[best]
            row["best_truth"] = float(pair.truth[best])
        rows.append(row)
    return pd.DataFrame(rows)
