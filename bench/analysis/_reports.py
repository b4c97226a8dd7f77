"""The correlation and search reports: tables (LaTeX, Markdown, CSV) and figures, written to one folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..files import write_text
from . import _plots as plots
from ._correlation import (
    DEFAULT_TOP,
    BootstrapSettings,
    TruthSource,
    aggregate_runs,
    cell_views,
    correlation_table,
    iter_pairs,
    metric_names,
)
from ._provenance import Provenance
from ._scores import META_KEYS, Pairing, ScoreRun, file_digest, pair_runs
from ._search import SearchReport
from ._significance import TEST_NAMES, FriedmanResult, cliques
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


#: How captions name a scoring setting that differs between score files.
_VARIED = {
    "seed": "the scoring seed (batch and initialisation)",
    "sample_seed": "the sample seed (which architectures)",
    "batch_size": "the batch size",
    "teacher_weights": "the teacher's weights",
    "init": "the initialisation scheme",
}


def varied_settings(runs: Sequence[ScoreRun]) -> list[str]:
    """The scoring settings (meta keys) whose values differ between score files."""
    return [k for k in META_KEYS if len({r.meta.get(k) for r in runs}) > 1]


def describe_pairing(runs: Sequence[ScoreRun], pairing: Pairing) -> str:
    """A caption's sentence on what varied between score files and how they were paired."""
    if len(runs) < 2:
        return f"One score file, {len(pairing.common)} architectures."
    varied = varied_settings(runs) or ["nothing recorded"]
    sample = runs[0].meta.get("sample_seed")
    drawn = f" (drawn with sample seed {sample})" if sample is not None and "sample_seed" not in varied else ""
    text = (
        f"{len(runs)} score files that differ in {', '.join(_VARIED.get(k, k.replace('_', ' ')) for k in varied)}, "
        f"paired by architecture: the {len(pairing.common)} architectures common to all{drawn}."
    )
    warning = pairing.warning()
    return f"{text} Warning: {warning}." if warning else text


def left_out(table: pd.DataFrame) -> list[str]:
    """One line per proxy whose rows were left out of (or collapsed before) its correlations, summed over runs.

    Counts are of the widest view (all cells) and the first ground truth, so none is counted twice.
    """
    if table.empty:
        return []
    view = table[(table["cells"] == table["cells"].iat[0]) & (table["ground_truth"] == table["ground_truth"].iat[0])]
    what = {
        "n_failed": "failed",
        "n_nonfinite": "non-finite (NaN or inf)",
        "n_missing": "not scored",
        "n_no_truth": "without ground truth",
        "n_duplicates": "repeated identical row(s) kept once",
    }
    lines = []
    for proxy, group in view.groupby("proxy", sort=False):
        parts = []
        for key, label in what.items():
            per_run = group.loc[group[key] > 0, ["run", key]]
            if per_run.empty:
                continue
            where = "" if table["run"].nunique() == 1 else " (" + ", ".join(per_run["run"].astype(str)) + ")"
            parts.append(f"{int(per_run[key].sum())} {label}{where}")
        if parts:
            lines.append(f"{proxy}: {'; '.join(parts)}")
    return lines


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
    commit: str | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """Correlate, then write ``correlation.*`` (every run, all and valid cells, with intervals),
    ``correlation_seeds.*`` (mean ± std over runs, when there are several) and the figures; returns the
    per-run table and the files."""
    out = Path(out)
    bootstrap = bootstrap or BootstrapSettings()
    pairing = pair_runs(runs)
    table = correlation_table(
        runs, truths, connected_only=connected_only, unique=unique, top=top, bootstrap=bootstrap, pairing=pairing
    )
    config = {
        "analysis": "correlation",
        "inputs": {str(r.path): r.digest() for r in runs},
        "scoring": {r.label: r.meta for r in runs},
        "varied": varied_settings(runs),
        "paired_architectures": len(pairing.common),
        "architectures_per_file": pairing.per_file,
        "ground_truth": _truth_config(truths),
        "cells": list(cell_views(connected_only)),
        "unique": unique,
        "top_percent": list(top),
        "bootstrap": vars(bootstrap),
    }
    provenance = Provenance.capture(config, command=command, commit=commit)
    names = metric_names(top)
    subset = ", one per isomorphism class (lowest index)" if unique else ""
    dropped = left_out(table)
    definitions = (
        f"{describe_scoring(runs)} {describe_pairing(runs, pairing)} Cells: "
        + ("all = every architecture scored, valid = " if not connected_only else "valid = ")
        + f"only the valid networks (NB201: the input reaches the output){subset}; n = architectures with a "
        "finite score and a ground truth"
        + (f" (left out: {'; '.join(dropped)})" if dropped else "")
        + ". top-K %: precision of the proxy's top K % among the truly best K %; best (pct.): percentile of the "
        "proxy's top architecture in the ground truth (100 = the truly best)."
    )
    bold = "the highest value per column in bold (descriptive: no test separates the proxies here)"
    several = table["run"].nunique() > 1
    keys = (["run"] if several else []) + ["dataset", "ground_truth", "cells"]
    headers = {"run": "run", "dataset": "dataset", "ground_truth": "ground truth", "cells": "cells"}
    columns = [Column(k, headers[k], kind="text") for k in keys]
    columns += [Column("proxy", "proxy", kind="text"), Column("n", "n", kind="int")]
    for name in names:
        header, latex = metric_header(name)
        digits = 1 if name == "best_pct" else 3
        columns.append(Column(name, header, latex, digits=digits, interval=(f"{name}_low", f"{name}_high"), best="max"))
    if table["note"].astype(bool).any():
        columns.append(Column("note", "note", kind="text"))
    ci = (
        f"{bootstrap.confidence:.0%} {bootstrap.method} bootstrap intervals over {bootstrap.n_resamples} paired "
        f"resamples of architectures in brackets; {bold}."
        if bootstrap.n_resamples
        else f"No bootstrap intervals; {bold}."
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
        written += _seeds_table(table, names, top, definitions, bold, provenance, out, formats)
    if plot:
        written += _correlation_figures(runs, truths, table, out / PLOTS_DIR, connected_only, unique, pairing)
    return table, written


def _seeds_table(
    table: pd.DataFrame,
    names: Sequence[str],
    top: Sequence[float],
    definitions: str,
    bold: str,
    provenance: Provenance,
    out: Path,
    formats: Sequence[str],
) -> list[Path]:
    summary = aggregate_runs(table, top=top)
    agg_columns = [
        Column("dataset", "dataset", kind="text"),
        Column("ground_truth", "ground truth", kind="text"),
        Column("cells", "cells", kind="text"),
        Column("proxy", "proxy", kind="text"),
        Column("runs", "runs", kind="int"),
        Column("n_min", "n", kind="int"),
    ]
    for name in names:
        header, latex = metric_header(name)
        digits = 1 if name == "best_pct" else 3
        agg_columns.append(Column(f"{name}_mean", header, latex, digits=digits, spread=f"{name}_std", best="max"))
    return Table(
        name="correlation_seeds",
        frame=summary,
        columns=agg_columns,
        caption=(
            f"Rank correlation over score files: mean ± sample standard deviation over runs. {definitions} "
            f"n: the smallest over runs; {bold}."
        ),
        label="tab:correlation-seeds",
        provenance=provenance,
        groups=["dataset", "ground_truth", "cells"],
    ).write(out, formats)


def _correlation_figures(
    runs: Sequence[ScoreRun],
    truths: Sequence[TruthSource],
    table: pd.DataFrame,
    folder: Path,
    connected_only: bool,
    unique: bool,
    pairing: Pairing,
) -> list[Path]:
    written: list[Path] = []
    # One scatter per (dataset, ground truth, proxy), from the first run and its widest view (invalid cells
    # marked): the other runs look alike.
    widest = cell_views(connected_only)[0]
    pairs = iter_pairs(runs[:1], truths, connected_only=connected_only, unique=unique, pairing=pairing)
    for pair in pairs:
        if len(pair.score) < 3 or pair.cells != widest:
            continue
        stem = folder / plots.slug(f"scatter_{pair.run.dataset}_{pair.source.label}_{pair.proxy}")
        written += plots.plot_scatter(
            pair.score,
            pair.truth,
            stem,
            proxy=pair.proxy,
            truth_label=pair.source.label,
            title=f"{pair.proxy} on {pair.run.dataset} ({pair.run.label})",
            valid=pair.valid,
        )
    if table["run"].nunique() > 1:
        for (dataset, truth, cells), group in table.groupby(["dataset", "ground_truth", "cells"], sort=False):
            stem = folder / plots.slug(f"box_spearman_{dataset}_{truth}_{cells}")
            written += plots.plot_box(
                group,
                "spearman",
                stem,
                title=f"Spearman rho over {group['run'].nunique()} runs\n{dataset}, {truth}, {cells} cells",
                label="Spearman rho",
            )
    return written


def _bold_rule(report: SearchReport) -> str:
    test = TEST_NAMES[report.test]
    return (
        f"Bold: the best mean where the {test} test over seeds, Holm-corrected over all pairs of methods, "
        f"separates it from every other method in its favour at {report.alpha:g} (avg. rank: where Friedman's "
        "test rejects and Nemenyi's test separates it from every other); no bold where no test does."
    )


def _warnings(report: SearchReport) -> str:
    return "".join(f" Warning: {w}." for w in report.warnings)


def _left_out(summary: pd.DataFrame) -> str:
    """A caption's sentence on completed trials that no pick could be, where there were any."""
    parts = []
    for key, label in (("nonfinite", "had a non-finite score"), ("infeasible", "broke a cost limit")):
        total = int(summary[key].sum()) if key in summary.columns else 0
        if total:
            parts.append(f"{total} completed trial(s) {label}")
    return f" Never picked: {'; '.join(parts)}." if parts else ""


def write_search_report(
    report: SearchReport,
    out: str | Path,
    *,
    config: Mapping[str, object],
    true_fronts: Mapping[tuple[str, str], pd.DataFrame] | None = None,
    formats: Sequence[str] = FORMATS,
    plot: bool = True,
    command: str | None = None,
    commit: str | None = None,
    cost_note: str | None = None,
) -> list[Path]:
    """Write ``search.*`` (per sampler and proxy), ``search_anytime.*``, ``search_pairwise.*``, ``search_ranks.*``,
    ``search_runs.*``, ``search_tests.csv``, ``anytime_regret.csv`` and the figures (anytime regret, found
    fronts, critical-difference diagrams). ``config`` (settings and input digests) goes into every file's
    provenance; ``cost_note`` says what the cost column is (where the trials have a ``cost``)."""
    out = Path(out)
    provenance = Provenance.capture(config, command=command, commit=commit)
    keys = (["space"] if report.summary["space"].nunique() > 1 else []) + ["dataset"]
    multi = "hypervolume_mean" in report.summary.columns and report.summary["hypervolume_mean"].notna().any()
    written = _summary_tables(report, keys, provenance, out, formats, multi, cost_note)
    written += _anytime_table(report, keys, provenance, out, formats)
    written += _pairwise_tables(report, keys, provenance, out, formats)
    written += _runs_tables(report, provenance, out, formats, multi)
    if plot:
        written += _search_figures(report, out / PLOTS_DIR, true_fronts)
    return written


def _method_columns(keys: Sequence[str]) -> list[Column]:
    return [*[Column(k, k, kind="text") for k in keys], Column("sampler", "sampler", kind="text"),
            Column("proxy", "proxy", kind="text")]  # fmt: skip


def _budgets(report: SearchReport) -> str:
    return ", ".join(f"{d}: {b}" for (_, d), b in sorted(report.budget.items()))


def _notes(report: SearchReport) -> str:
    return f"{_left_out(report.summary)} {_bold_rule(report)}{_warnings(report)}"


def _summary_tables(
    report: SearchReport, keys: list[str], provenance: Provenance, out: Path, formats: Sequence[str], multi: bool,
    cost_note: str | None,
) -> list[Path]:  # fmt: skip
    """``search.*``: a row per method (and, but in the CSV, an "optimal" row), with the cost where known."""
    summary = report.summary
    columns = [
        *_method_columns(keys),
        Column("seeds", "seeds", kind="int"),
        Column("chosen_acc_mean", "accuracy", digits=2, spread="chosen_acc_std", emphasis="best_chosen_acc"),
        Column("regret_mean", "regret", digits=2, spread="regret_std", emphasis="best_regret"),
        Column("auc_mean", "AUC", digits=2, spread="auc_std", emphasis="best_auc"),
        Column("avg_rank", "avg. rank", digits=2, emphasis="best_avg_rank"),
    ]
    if multi:
        columns.append(Column("hv_ratio_mean", "HV ratio", digits=3, spread="hv_ratio_std", emphasis="best_hv_ratio"))
    costed = "cost_mean" in summary.columns and summary["cost_mean"].notna().any()
    if costed:
        columns.append(Column("cost_h_mean", "cost (h)", digits=3, spread="cost_h_std"))
        summary = summary.assign(cost_h_mean=summary["cost_mean"] / 3600, cost_h_std=summary["cost_std"] / 3600)
    seeds = ", ".join(f"{r.dataset}: {r.friedman_blocks}" for r in report.design.itertuples())
    caption = (
        f"Search comparison over seeds (mean ± sample standard deviation), budget {_budgets(report)} evaluations. "
        "accuracy: ground truth of the architecture with the best proxy score found; regret: the space's "
        "optimum minus that accuracy (accuracy points); AUC: mean anytime regret over the budget; "
        f"avg. rank: mean rank by final regret over the seeds every method has ({seeds}; 1 = best)"
        + ("; HV ratio: hypervolume of the found front in (accuracy, params) over that of the true front" if multi
           else "")
        + (f"; cost: {cost_note or COST_NOTE}" if costed else "")
        + f". optimal: the space's best ground truth.{_notes(report)}"
    )  # fmt: skip
    # The "optimal" row is for readers; the CSV keeps a row per method for programs.
    written = Table("search", summary, columns, caption, "tab:search", provenance, groups=keys).write(
        out, [f for f in formats if f == "csv"]
    )
    shown = _with_optimal(summary, report)
    return written + Table("search", shown, columns, caption, "tab:search", provenance, groups=keys).write(
        out, [f for f in formats if f != "csv"]
    )


def _anytime_table(
    report: SearchReport, keys: list[str], provenance: Provenance, out: Path, formats: Sequence[str]
) -> list[Path]:
    anytime = [
        *_method_columns(keys),
        *[
            Column(f"regret@{c}_mean", f"regret@{c}", digits=2, spread=f"regret@{c}_std", emphasis=f"best_regret@{c}")
            for c in report.checkpoints
        ],
        Column("auc_mean", "AUC", digits=2, spread="auc_std", emphasis="best_auc"),
    ]
    return Table(
        name="search_anytime",
        frame=report.summary,
        columns=anytime,
        caption=(
            f"Anytime regret over seeds (mean ± sample standard deviation): regret@k is the regret of the "
            f"architecture with the best proxy score among the first k evaluations; AUC: its mean over the "
            f"budget ({_budgets(report)} evaluations).{_notes(report)}"
        ),
        label="tab:search-anytime",
        provenance=provenance,
        groups=keys,
    ).write(out, formats)


#: What the search table's cost is, unless the caller says more precisely.
COST_NOTE = "hours its distinct evaluations would take without a cache (mean ± sample standard deviation)"


def _with_optimal(summary: pd.DataFrame, report: SearchReport) -> pd.DataFrame:
    """The summary with an "optimal" row a (space, dataset): the best ground truth, zero regret."""
    rows = [
        {"space": space, "dataset": dataset, "sampler": "optimal", "proxy": None, "chosen_acc_mean": optimum,
         "regret_mean": 0.0}
        for (space, dataset), optimum in sorted(report.optima.items())
    ]  # fmt: skip
    if not rows:
        return summary
    shown = pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)
    flags = [c for c in shown.columns if c.startswith("best_")]
    shown[flags] = shown[flags].fillna(False).astype(bool)
    return shown.sort_values(["space", "dataset"], kind="stable").reset_index(drop=True)


def _pairwise_tables(
    report: SearchReport, keys: list[str], provenance: Provenance, out: Path, formats: Sequence[str]
) -> list[Path]:
    """``search_pairwise.*`` (tests on final regret), ``search_ranks.*`` (average ranks, Friedman, Nemenyi) and
    ``search_tests.csv`` (the tests of every measure)."""
    written: list[Path] = []
    test = TEST_NAMES[report.test]
    if not report.pairwise.empty:
        pairwise = report.pairwise.assign(significant=report.pairwise["significant"].map({True: "yes", False: "no"}))
        paired = report.test == "wilcoxon"
        written += Table(
            name="search_pairwise",
            frame=pairwise,
            columns=[
                *[Column(k, k, kind="text") for k in keys],
                Column("method_a", "method A", kind="text"),
                Column("method_b", "method B", kind="text"),
                Column("n_pairs" if paired else "n_a", "seeds", kind="int"),
                Column("mean_a", "regret A", digits=2),
                Column("mean_b", "regret B", digits=2),
                Column("statistic", "statistic", digits=1),
                Column("p", "p", kind="pvalue"),
                Column("p_holm", "p (Holm)", kind="pvalue"),
                Column("significant", f"significant at {report.alpha:g}", kind="text"),
                Column("favours", "favours", kind="text"),
            ],
            caption=(
                f"Pairwise {test} tests on the per-seed final regret (the accuracy of the pick, mirrored)"
                + (", paired by seed" if paired else ", unpaired")
                + f"; regret A/B: mean over seeds; p-values Holm-corrected over the pairs of each dataset; "
                f"significant where the corrected p < {report.alpha:g}; favours: the method with the lower regret "
                f"by the test's own statistic.{_warnings(report)}"
            ),
            label="tab:search-pairwise",
            provenance=provenance,
            groups=keys,
        ).write(out, formats)
    ranks = report.ranks
    friedman = "; ".join(
        _friedman_sentence(space, dataset, r) for (space, dataset), r in sorted(report.friedman.items())
    )
    written += Table(
        name="search_ranks",
        frame=ranks,
        columns=[
            *[Column(k, k, kind="text") for k in keys],
            Column("sampler", "sampler", kind="text"),
            Column("proxy", "proxy", kind="text"),
            Column("avg_rank", "avg. rank", digits=2, emphasis="best_avg_rank"),
        ],
        caption=(
            "Average rank by final regret over the seeds every method has (1 = best; ties share the mean rank). "
            f"{friedman}. Bold: the best rank where Friedman's test rejects and Nemenyi's test separates it from "
            f"every other at {report.alpha:g}; the critical-difference diagram joins the methods it cannot "
            f"separate.{_warnings(report)}"
        ),
        label="tab:search-ranks",
        provenance=provenance,
        groups=keys,
    ).write(out, formats)
    if "csv" in formats and not report.tests.empty:
        written += Table(
            name="search_tests",
            frame=report.tests,
            columns=[Column(c, c, kind="text") for c in ("space", "dataset", "measure", "method_a", "method_b")],
            caption=f"Pairwise {test} tests of every measure, Holm-corrected over the pairs of each measure.",
            label="tab:search-tests",
            provenance=provenance,
        ).write(out, ["csv"])
    return written


def _friedman_sentence(space: str, dataset: str, result: FriedmanResult) -> str:
    where = f"{space}/{dataset}"
    if not math.isfinite(result.statistic):
        return f"{where}: {result.note}"
    sentence = (
        f"{where}: Friedman chi2 = {result.statistic:.2f} ({len(result.methods) - 1} df, {result.n_blocks} seeds), "
        f"p = {result.pvalue:.3g}; Nemenyi critical difference at {result.alpha:g}: {result.critical_difference:.2f}"
    )
    return f"{sentence} ({result.note})" if result.note else sentence


def _runs_tables(
    report: SearchReport, provenance: Provenance, out: Path, formats: Sequence[str], multi: bool
) -> list[Path]:
    run_columns = [Column(k, k, kind="text") for k in ("dataset", "sampler", "proxy")] + [
        Column("seed", "seed", kind="int"),
        Column("completed", "completed", kind="int"),
        Column("nonfinite", "non-finite", kind="int"),
        Column("pruned", "pruned", kind="int"),
        Column("chosen_arch", "chosen architecture", kind="text"),
        Column("chosen_acc", "accuracy", digits=2),
        Column("regret", "regret", digits=2),
        Column("auc", "AUC", digits=2),
    ]
    if "cost" in report.runs.columns:
        run_columns += [Column("distinct", "distinct", kind="int"), Column("cost", "cost (s)", digits=1)]
    if multi:
        run_columns.append(Column("hypervolume", "hypervolume", digits=3))
    written = Table(
        name="search_runs",
        frame=report.runs,
        columns=run_columns,
        caption=(
            "Each search run: the architecture it chose and its regret. completed: trials that completed within "
            "the budget; non-finite: of those, trials whose score was not finite, never picked; pruned: trials "
            "whose score failed."
        ),
        label="tab:search-runs",
        provenance=provenance,
    ).write(out, [f for f in formats if f != "latex"])
    if "csv" in formats:
        path = out / "anytime_regret.csv"
        write_text(path, "".join(f"# {line}\n" for line in provenance.lines()) + report.curves.to_csv(index=False))
        written.append(path)
    return written


def _search_figures(
    report: SearchReport, folder: Path, true_fronts: Mapping[tuple[str, str], pd.DataFrame] | None
) -> list[Path]:
    written: list[Path] = []
    for (space, dataset), group in report.curves.groupby(["space", "dataset"], sort=True):
        written += plots.plot_anytime(
            group,
            folder / plots.slug(f"anytime_regret_{space}_{dataset}"),
            title=f"Anytime regret, {space} / {dataset}",
        )
    for (space, dataset), group in report.fronts.groupby(["space", "dataset"], sort=True) if len(report.fronts) else []:
        true_front = (true_fronts or {}).get((space, dataset))
        if true_front is None:
            raise ValueError(f"no true front given for {space} / {dataset}")
        written += plots.plot_pareto(
            group,
            true_front,
            folder / plots.slug(f"pareto_{space}_{dataset}"),
            title=f"Found fronts, {space} / {dataset}",
        )
    for (space, dataset), result in sorted(report.friedman.items()):
        if not math.isfinite(result.critical_difference):
            continue
        title = (
            f"{space} / {dataset}: average rank by final regret over {result.n_blocks} seeds\n"
            f"Friedman p = {result.pvalue:.3g}; Nemenyi CD at {result.alpha:g} = {result.critical_difference:.2f}"
        )
        written += plots.plot_cd(
            result.avg_ranks,
            result.critical_difference,
            cliques(result.avg_ranks, result.critical_difference),
            folder / plots.slug(f"cd_{space}_{dataset}"),
            title=title,
        )
    return written
