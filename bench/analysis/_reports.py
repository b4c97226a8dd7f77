"""The correlation and search reports: tables (LaTeX, Markdown, CSV) and figures, written to one folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from . import _plots as plots
from ._correlation import (
    DEFAULT_TOP,
    BootstrapSettings,
    TruthSource,
    aggregate_runs,
    correlation_table,
    iter_pairs,
    metric_names,
)
from ._provenance import Provenance
from ._scores import ScoreRun, file_digest
from ._search import SearchReport
from ._tables import FORMATS, Column, Table

PLOTS_DIR = "plots"


def metric_header(name: str) -> tuple[str, str]:
    """(Markdown header, LaTeX header) of a correlation metric."""
    fixed = {
        "kendall": ("Kendall τ", r"Kendall $\tau$"),
        "spearman": ("Spearman ρ", r"Spearman $\rho$"),
        "pearson": ("Pearson r", r"Pearson $r$"),
        "best_pct": ("best (pct.)", r"best (pct.)"),
    }
    if name in fixed:
        return fixed[name]
    k = name.removeprefix("top")
    return f"top-{k} %", rf"top-{k}\,\%"


def _values(runs: Sequence[ScoreRun], key: str) -> str:
    found = list(dict.fromkeys(r.meta.get(key, "unknown") for r in runs))
    return ", ".join(found)


def _teacher(run: ScoreRun) -> str:
    name = run.meta.get("teacher")
    if not name:
        return "none"
    from ..teachers import TEACHERS

    pretrained = name in TEACHERS and getattr(TEACHERS.factory(name), "pretrained", False)
    weights = "pretrained" if pretrained else "random weights"
    if run.meta.get("teacher_weights"):
        weights = "trained weights " + run.meta["teacher_weights"]
    return f"{name} ({weights}, for the teacher-aware proxies)"


def describe_scoring(runs: Sequence[ScoreRun]) -> str:
    """One sentence naming what made the scores: space, dataset, batch size, teacher, initialisation, seeds."""
    from spaces import SPACES, get_space

    teacher = ", ".join(dict.fromkeys(_teacher(r) for r in runs))
    text = all(
        r.meta.get("space") in SPACES and getattr(get_space(r.meta["space"]), "input_kind", "image") == "tokens"
        for r in runs
    )
    return (
        f"Scores on {_values(runs, 'space')} / {_values(runs, 'dataset')}, one batch of {_values(runs, 'batch_size')} "
        f"{'sequences' if text else 'images'}, teacher {teacher}, init {_values(runs, 'init')}, "
        f"seed(s) {_values(runs, 'seed')}."
    )


def _truth_config(truths: Sequence[TruthSource]) -> list[dict[str, object]]:
    out = []
    for t in truths:
        path = getattr(t.ground_truth, "path", None)
        entry: dict[str, object] = {"label": t.label, "source": t.ground_truth.name.split(":")[0], "metric": t.metric}
        if path is not None and Path(path).is_file():
            entry["sha256"] = file_digest(Path(path))
        out.append(entry)
    return out


def write_correlation_report(
    runs: Sequence[ScoreRun],
    truths: Sequence[TruthSource],
    out: str | Path,
    *,
    connected_only: bool = False,
    unique: bool = False,
    top: Sequence[float] = DEFAULT_TOP,
    bootstrap: BootstrapSettings | None = None,
    formats: Sequence[str] = FORMATS,
    plot: bool = True,
    command: str | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """Correlate, then write ``correlation.*`` (every run, with intervals), ``correlation_seeds.*`` (mean ±
    std over runs, when there are several) and the figures; returns the per-run table and the files."""
    out = Path(out)
    bootstrap = bootstrap or BootstrapSettings()
    table = correlation_table(runs, truths, connected_only=connected_only, unique=unique, top=top, bootstrap=bootstrap)
    config = {
        "analysis": "correlation",
        "inputs": {str(r.path): r.digest() for r in runs},
        "scoring": {r.label: r.meta for r in runs},
        "ground_truth": _truth_config(truths),
        "connected_only": connected_only,
        "unique": unique,
        "top_percent": list(top),
        "bootstrap": vars(bootstrap),
    }
    provenance = Provenance.capture(config, command=command)
    names = metric_names(top)
    subset = "connected architectures only" if connected_only else "all architectures"
    if unique:
        subset += ", one per isomorphism class (lowest index)"
    definitions = (
        f"{describe_scoring(runs)} Architectures: {subset}; n = architectures with a score and a ground truth. "
        f"top-K %: precision of the proxy's top K % among the truly best K %; best (pct.): percentile of the "
        f"proxy's top architecture in the ground truth (100 = the truly best)."
    )
    several = table["run"].nunique() > 1
    keys = (["run"] if several else []) + ["dataset", "ground_truth"]
    columns = [
        Column(k, {"run": "run", "dataset": "dataset", "ground_truth": "ground truth"}[k], kind="text") for k in keys
    ]
    columns += [Column("proxy", "proxy", kind="text"), Column("n", "n", kind="int")]
    for name in names:
        header, latex = metric_header(name)
        digits = 1 if name == "best_pct" else 3
        columns.append(Column(name, header, latex, digits=digits, interval=(f"{name}_low", f"{name}_high"), best="max"))
    if table["note"].astype(bool).any():
        columns.append(Column("note", "note", kind="text"))
    ci = (
        f"{bootstrap.confidence:.0%} {bootstrap.method} bootstrap intervals over {bootstrap.n_resamples} paired "
        "resamples of architectures in brackets; best per column in bold."
        if bootstrap.n_resamples
        else "No bootstrap intervals; best per column in bold."
    ).replace("%", " %")
    written = Table(
        name="correlation",
        frame=table,
        columns=columns,
        caption=f"Rank correlation of proxies with ground truth. {definitions} {ci}",
        label="tab:correlation",
        provenance=provenance,
        groups=keys,
    ).write(out, formats)
    if several:
        summary = aggregate_runs(table, top=top)
        agg_columns = [
            Column("dataset", "dataset", kind="text"),
            Column("ground_truth", "ground truth", kind="text"),
            Column("proxy", "proxy", kind="text"),
            Column("runs", "runs", kind="int"),
            Column("n_min", "n", kind="int"),
        ]
        for name in names:
            header, latex = metric_header(name)
            agg_columns.append(
                Column(
                    f"{name}_mean",
                    header,
                    latex,
                    digits=1 if name == "best_pct" else 3,
                    spread=f"{name}_std",
                    best="max",
                )
            )
        written += Table(
            name="correlation_seeds",
            frame=summary,
            columns=agg_columns,
            caption=(
                f"Rank correlation over scoring seeds: mean ± sample standard deviation over runs. {definitions} "
                "n: the smallest over runs. Best mean per column in bold."
            ),
            label="tab:correlation-seeds",
            provenance=provenance,
            groups=["dataset", "ground_truth"],
        ).write(out, formats)
    if plot:
        written += _correlation_figures(runs, truths, table, out / PLOTS_DIR, connected_only, unique)
    return table, written


def _correlation_figures(
    runs: Sequence[ScoreRun],
    truths: Sequence[TruthSource],
    table: pd.DataFrame,
    folder: Path,
    connected_only: bool,
    unique: bool,
) -> list[Path]:
    written: list[Path] = []
    # One scatter per (dataset, ground truth, proxy), from the first run: the others look alike.
    for pair in iter_pairs(runs[:1], truths, connected_only=connected_only, unique=unique):
        if len(pair.score) < 3:
            continue
        stem = folder / plots.slug(f"scatter_{pair.run.dataset}_{pair.source.label}_{pair.proxy}")
        written += plots.plot_scatter(
            pair.score,
            pair.truth,
            stem,
            proxy=pair.proxy,
            truth_label=pair.source.label,
            title=f"{pair.proxy} on {pair.run.dataset} ({pair.run.label})",
        )
    if table["run"].nunique() > 1:
        for (dataset, truth), group in table.groupby(["dataset", "ground_truth"], sort=False):
            stem = folder / plots.slug(f"box_spearman_{dataset}_{truth}")
            written += plots.plot_box(
                group,
                "spearman",
                stem,
                title=f"Spearman rho over {group['run'].nunique()} runs\n{dataset}, {truth}",
                label="Spearman rho",
            )
    return written


def write_search_report(
    report: SearchReport,
    out: str | Path,
    *,
    config: Mapping[str, object],
    true_fronts: Mapping[tuple[str, str], pd.DataFrame] | None = None,
    formats: Sequence[str] = FORMATS,
    plot: bool = True,
    command: str | None = None,
    alpha: float = 0.05,
    test: str = "mannwhitney",
) -> list[Path]:
    """Write ``search.*`` (per sampler and proxy), ``search_anytime.*``, ``search_pairwise.*``, ``search_runs.*``,
    ``anytime_regret.csv`` and the figures. ``config`` (settings and input digests) goes into every file's
    provenance."""
    out = Path(out)
    provenance = Provenance.capture(config, command=command)
    summary = report.summary
    spaces = summary["space"].nunique() > 1
    keys = (["space"] if spaces else []) + ["dataset"]
    columns = [Column(k, k, kind="text") for k in keys]
    columns += [
        Column("sampler", "sampler", kind="text"),
        Column("proxy", "proxy", kind="text"),
        Column("seeds", "seeds", kind="int"),
        Column("chosen_acc_mean", "accuracy", digits=2, spread="chosen_acc_std", best="max"),
        Column("regret_mean", "regret", digits=2, spread="regret_std", best="min"),
    ]
    anytime = [*columns[: len(keys) + 2]]  # the keys, sampler and proxy
    anytime += [
        Column(f"regret@{c}_mean", f"regret@{c}", digits=2, spread=f"regret@{c}_std", best="min")
        for c in report.checkpoints
    ]
    anytime.append(Column("auc_mean", "AUC", digits=2, spread="auc_std", best="min"))
    columns += [
        Column("auc_mean", "AUC", digits=2, spread="auc_std", best="min"),
        Column("avg_rank", "avg. rank", digits=2, best="min"),
    ]
    multi = "hypervolume_mean" in summary.columns and summary["hypervolume_mean"].notna().any()
    if multi:
        columns.append(Column("hv_ratio_mean", "HV ratio", digits=3, spread="hv_ratio_std", best="max"))
    budgets = ", ".join(f"{d}: {b}" for (_, d), b in sorted(report.budget.items()))
    caption = (
        f"Search comparison over seeds (mean ± sample standard deviation), budget {budgets} evaluations. "
        "accuracy: ground truth of the architecture with the best proxy score found; regret: the space's "
        "optimum minus that accuracy (accuracy points); AUC: mean anytime regret over the budget; "
        "avg. rank: mean rank by final regret over seeds (1 = best)"
        + (
            "; HV ratio: hypervolume of the found front in (accuracy, params) over that of the true front"
            if multi
            else ""
        )
        + ". Best per column in bold."
    )
    written = Table(
        name="search",
        frame=summary,
        columns=columns,
        caption=caption,
        label="tab:search",
        provenance=provenance,
        groups=keys,
    ).write(out, formats)
    written += Table(
        name="search_anytime",
        frame=summary,
        columns=anytime,
        caption=(
            f"Anytime regret over seeds (mean ± sample standard deviation): regret@k is the regret of the "
            f"architecture with the best proxy score among the first k evaluations; AUC: its mean over the "
            f"budget ({budgets} evaluations). Best per column in bold."
        ),
        label="tab:search-anytime",
        provenance=provenance,
        groups=keys,
    ).write(out, formats)
    if not report.pairwise.empty:
        pairwise = report.pairwise.assign(significant=report.pairwise["significant"].map({True: "yes", False: "no"}))
        test_name = "two-sided Mann-Whitney U" if test == "mannwhitney" else "two-sided Wilcoxon signed-rank"
        written += Table(
            name="search_pairwise",
            frame=pairwise,
            columns=[
                *[Column(k, k, kind="text") for k in keys],
                Column("method_a", "method A", kind="text"),
                Column("method_b", "method B", kind="text"),
                Column("median_a", "median A", digits=2),
                Column("median_b", "median B", digits=2),
                Column("statistic", "statistic", digits=1),
                Column("p", "p", kind="pvalue"),
                Column("p_holm", "p (Holm)", kind="pvalue"),
                Column("significant", f"significant at {alpha:g}", kind="text"),
            ],
            caption=(
                f"Pairwise {test_name} tests on the per-seed accuracy of the chosen architecture; p-values "
                f"Holm-corrected over the pairs of each dataset; significant where the corrected p < {alpha:g}."
            ),
            label="tab:search-pairwise",
            provenance=provenance,
            groups=keys,
        ).write(out, formats)
    run_columns = [Column(k, k, kind="text") for k in ("dataset", "sampler", "proxy")] + [
        Column("seed", "seed", kind="int"),
        Column("completed", "completed", kind="int"),
        Column("chosen_arch", "chosen architecture", kind="text"),
        Column("chosen_acc", "accuracy", digits=2),
        Column("regret", "regret", digits=2),
        Column("auc", "AUC", digits=2),
    ]
    if multi:
        run_columns.append(Column("hypervolume", "hypervolume", digits=3))
    written += Table(
        name="search_runs",
        frame=report.runs,
        columns=run_columns,
        caption="Each search run: the architecture it chose and its regret.",
        label="tab:search-runs",
        provenance=provenance,
    ).write(out, [f for f in formats if f != "latex"])
    curves = report.curves
    if "csv" in formats:
        path = out / "anytime_regret.csv"
        path.write_text("".join(f"# {line}\n" for line in provenance.lines()) + curves.to_csv(index=False))
        written.append(path)
    if plot:
        for (space, dataset), group in curves.groupby(["space", "dataset"], sort=True):
            written += plots.plot_anytime(
                group,
                out / PLOTS_DIR / plots.slug(f"anytime_regret_{space}_{dataset}"),
                title=f"Anytime regret, {space} / {dataset}",
            )
        if not report.fronts.empty:
            for (space, dataset), group in report.fronts.groupby(["space", "dataset"], sort=True):
                true_front = (true_fronts or {}).get((space, dataset))
                if true_front is None:
                    raise ValueError(f"no true front given for {space} / {dataset}")
                written += plots.plot_pareto(
                    group,
                    true_front,
                    out / PLOTS_DIR / plots.slug(f"pareto_{space}_{dataset}"),
                    title=f"Found fronts, {space} / {dataset}",
                )
    return written
