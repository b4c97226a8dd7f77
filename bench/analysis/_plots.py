"""Figures, as PNG and PDF with the same bytes for the same data.

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no global
backend switch) under a fixed style, and saved without the creation date and software stamps that
would change the bytes from one run to the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ._stats import pareto_mask

PLOT_FORMATS = ("png", "pdf")
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "pdf.compression": 6,
    "path.simplify": False,
}
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("_") or "unnamed"


@contextmanager
def _figure(width: float = 5.0, height: float = 3.6) -> Iterator[Figure]:
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig


def save(fig: Figure, stem: str | Path, formats: Sequence[str] = PLOT_FORMATS) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (or the formats given); returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in PLOT_FORMATS:
            raise ValueError(f"unknown plot format {fmt!r}. Valid choices: {', '.join(PLOT_FORMATS)}")
        path = stem.with_name(f"{stem.name}.{fmt}")
        with mpl.rc_context(_STYLE):
            fig.savefig(path, format=fmt, metadata=_METADATA[fmt])
        paths.append(path)
    return paths


def _band(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows and a two-sided t confidence interval of the mean (no band for one row).

    Regret is never negative, so the band is cut at zero.
    """
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, np.maximum(mean - half, 0.0), mean + half


def plot_anytime(
    curves: pd.DataFrame, stem: str | Path, *, title: str, confidence: float = 0.95, formats=PLOT_FORMATS
) -> list[Path]:
    """Mean anytime regret of each (sampler, proxy) over its seeds, with a t confidence band of the mean."""
    with _figure() as fig:
        ax = fig.add_subplot()
        for (sampler, proxy), group in curves.groupby(["sampler", "proxy"], sort=True):
            table = group.pivot(index="seed", columns="evaluations", values="regret").dropna(axis=1)
            x = table.columns.to_numpy(float)
            mean, low, high = _band(table.to_numpy(float), confidence)
            (line,) = ax.step(x, mean, where="post", label=f"{sampler} / {proxy} (n={len(table)})")
            if len(table) > 1:
                ax.fill_between(x, low, high, step="post", alpha=0.12, color=line.get_color(), linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (accuracy points)")
        ax.set_title(title)
        ax.legend(fontsize=7)
        return save(fig, stem, formats)


def plot_scatter(
    score: np.ndarray,
    truth: np.ndarray,
    stem: str | Path,
    *,
    proxy: str,
    truth_label: str,
    title: str,
    formats=PLOT_FORMATS,
) -> list[Path]:
    """Proxy score against ground truth, one point per architecture, Spearman's rho in the title."""
    rho = stats.spearmanr(score, truth).statistic
    score = np.asarray(score, dtype=float)
    with _figure(4.2, 3.6) as fig:
        ax = fig.add_subplot()
        # Rasterised points keep the PDF small for the 15,625 architectures of a full space.
        ax.scatter(score, truth, s=6, alpha=0.5, linewidths=0, rasterized=True)
        # Scores spanning many orders of magnitude (synflow reaches 1e48) are only readable on a log axis.
        magnitude = np.abs(score[score != 0])
        if len(magnitude) and magnitude.max() / magnitude.min() > 1e3:
            if (score > 0).all():
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(mpl.ticker.LogLocator(numticks=6))
            else:
                linthresh = float(magnitude.min())
                ax.set_xscale("symlog", linthresh=linthresh)
                locator = mpl.ticker.SymmetricalLogLocator(base=10, linthresh=linthresh)
                locator.set_params(numticks=6)
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
                if (score >= 0).all():
                    ax.set_xlim(left=0)
        ax.set_xlabel(f"{proxy} score")
        ax.set_ylabel(truth_label)
        ax.set_title(f"{title}\nSpearman rho = {rho:.3f} (n = {len(score)})")
        return save(fig, stem, formats)


def plot_box(
    table: pd.DataFrame, metric: str, stem: str | Path, *, title: str, label: str | None = None, formats=PLOT_FORMATS
) -> list[Path]:
    """A box per proxy of one metric over runs (ranking stability across scoring seeds)."""
    proxies = list(dict.fromkeys(table["proxy"]))
    data = [table.loc[table["proxy"] == p, metric].dropna().to_numpy(float) for p in proxies]
    with _figure(max(3.0, 0.7 * len(proxies) + 1.5), 3.4) as fig:
        ax = fig.add_subplot()
        ax.boxplot(data, tick_labels=proxies, showmeans=True)
        ax.set_ylabel(label or metric)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="x", labelrotation=30)
        return save(fig, stem, formats)


def plot_pareto(
    fronts: pd.DataFrame, true_front: pd.DataFrame, stem: str | Path, *, title: str, formats=PLOT_FORMATS
) -> list[Path]:
    """The fronts each (sampler, proxy) found (one line per seed) in (params, ground truth), and the true front.

    Each seed's line joins the members of its found front that no other member beats in both accuracy
    and size.
    """
    with _figure(5.2, 3.8) as fig:
        ax = fig.add_subplot()
        ax.step(true_front["params"] / 1e6, true_front["accuracy"], where="post", color="black", label="true front")
        cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, ((sampler, proxy), group) in enumerate(fronts.groupby(["sampler", "proxy"], sort=True)):
            colour = cycle[k % len(cycle)]
            for i, (_, run) in enumerate(group.groupby("seed", sort=True)):
                # Members dominated in (accuracy, params) add nothing to the front the user gets: draw the rest.
                run = run[pareto_mask(np.column_stack([run["accuracy"], -run["params"]]))]
                run = run.sort_values("params", kind="stable")
                ax.step(
                    run["params"] / 1e6,
                    run["accuracy"],
                    where="post",
                    marker="o",
                    markersize=3,
                    alpha=0.6,
                    color=colour,
                    label=f"{sampler} / {proxy}" if i == 0 else None,
                )
        ax.set_xlabel("parameters (millions)")
        ax.set_ylabel("ground-truth accuracy")
        ax.set_title(title)
        ax.legend(fontsize=7)
        return save(fig, stem, formats)
