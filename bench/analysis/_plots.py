"""Figures, as PNG and PDF with the same bytes for the same data.

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no global
backend switch) under a fixed style, and saved without the creation date and software stamps that
would change the bytes from one run to the next. PDFs embed TrueType fonts (``pdf.fonttype`` 42), which
publishers accept and whose text stays editable, rather than Type 3 fonts.
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

from ..files import atomic_open
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
    "pdf.fonttype": 42,
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


def save(fig: Figure, stem: str | Path, formats: Sequence[str] = PLOT_FORMATS, *, tight: bool = False) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (or the formats given); returns the paths written. ``tight`` crops the
    figure to what is drawn (for text placed outside the axes)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in PLOT_FORMATS:
            raise ValueError(f"unknown plot format {fmt!r}. Valid choices: {', '.join(PLOT_FORMATS)}")
        path = stem.with_name(f"{stem.name}.{fmt}")
        with mpl.rc_context(_STYLE), atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight" if tight else None)
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
    valid: np.ndarray | None = None,
    formats=PLOT_FORMATS,
) -> list[Path]:
    """Proxy score against ground truth, one point per architecture, Spearman's rho in the title.

    With ``valid`` (a boolean per architecture), invalid networks are drawn as red crosses and the title
    also gives rho over the valid ones.
    """
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=float)
    valid = np.ones(len(score), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    rho = stats.spearmanr(score, truth).statistic
    with _figure(4.2, 3.6) as fig:
        ax = fig.add_subplot()
        # Rasterised points keep the PDF small for the 15,625 architectures of a full space.
        ax.scatter(score[valid], truth[valid], s=6, alpha=0.5, linewidths=0, rasterized=True, label="valid")
        if not valid.all():
            ax.scatter(
                score[~valid],
                truth[~valid],
                s=14,
                marker="x",
                color="tab:red",
                linewidths=0.8,
                rasterized=True,
                label=f"invalid (n = {int((~valid).sum())})",
            )
            ax.legend(fontsize=7, loc="lower right")
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
        summary = f"Spearman rho = {rho:.3f} (n = {len(score)})"
        if not valid.all() and valid.sum() >= 3:
            rho_valid = stats.spearmanr(score[valid], truth[valid]).statistic
            summary = f"Spearman rho: all {rho:.3f} (n = {len(score)}), valid {rho_valid:.3f} (n = {int(valid.sum())})"
        ax.set_title(f"{title}\n{summary}", fontsize=8)
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


def plot_cd(
    avg_ranks: pd.Series,
    critical_difference: float,
    groups: Sequence[Sequence[str]],
    stem: str | Path,
    *,
    title: str,
    formats=PLOT_FORMATS,
) -> list[Path]:
    """A critical-difference diagram (Demšar 2006): each method at its average rank on an axis from 1 (best,
    left), the critical difference as a bar above, and a thick line joining each group of methods whose
    ranks differ by no more than it (``groups``, e.g. :func:`bench.analysis.cliques`)."""
    ordered = avg_ranks.sort_values(kind="stable")
    k = len(ordered)
    half = (k + 1) // 2
    left, right = ordered.iloc[:half], ordered.iloc[half:][::-1]
    step, bar_step = 0.32, 0.14
    top = 0.9
    first_label = 0.35 + bar_step * len(groups)
    bottom = first_label + step * max(len(left), len(right))
    # Long axes get wider figures and a label on every other tick, so that the numbers do not collide.
    label_every = 1 if k <= 14 else 2
    with _figure(6.0 + 0.15 * max(0, k - 12), 0.5 + bottom * 0.55) as fig:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_xlim(0.5, max(k, 2) + 0.5)
        ax.set_ylim(bottom + 0.1, -top)
        ax.plot([1, k], [0, 0], color="black", linewidth=1)
        for tick in range(1, k + 1):
            ax.plot([tick, tick], [0, -0.08], color="black", linewidth=1)
            if (tick - 1) % label_every == 0 or tick == k:
                ax.text(tick, -0.12, str(tick), ha="center", va="bottom", fontsize=8)
        if np.isfinite(critical_difference):
            y = -0.6
            ax.plot([1, 1 + critical_difference], [y, y], color="black", linewidth=1.5)
            for x in (1, 1 + critical_difference):
                ax.plot([x, x], [y - 0.05, y + 0.05], color="black", linewidth=1)
            ax.text(1 + critical_difference / 2, y - 0.08, f"CD = {critical_difference:.2f}", ha="center", fontsize=8)
        for j, group in enumerate(groups):
            ranks = ordered.loc[list(group)]
            y = 0.25 + bar_step * j
            ax.plot([ranks.min() - 0.03, ranks.max() + 0.03], [y, y], color="black", linewidth=3, solid_capstyle="butt")
        for side, members, edge, align in ((0, left, 0.55, "right"), (1, right, max(k, 2) + 0.45, "left")):
            for i, (name, rank) in enumerate(members.items()):
                y = first_label + step * i
                ax.plot([rank, rank, edge], [0, y, y], color="0.3", linewidth=0.8)
                ax.text(edge + (-0.05 if side == 0 else 0.05), y, f"{name} ({rank:.2f})", ha=align, va="center",
                        fontsize=8)  # fmt: skip
        ax.set_title(title, fontsize=8)
        return save(fig, stem, formats, tight=True)
