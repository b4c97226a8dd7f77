"""``bench run``, ``bench sweep``, ``bench worker`` and ``bench samplers``: searching with proxies."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import optuna
import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..files import check_writable_dir
from ..search import (
    DEFAULT_CACHE,
    DEFAULT_N_TRIALS,
    SAMPLERS,
    Counts,
    LoopResult,
    RunConfig,
    Worker,
    absolute_url,
    aggregate,
    grid,
    join_worker,
    out_dir_for,
    parse_objectives,
    parse_samplers,
    parse_seeds,
    run_sweep,
    sampler_spec,
    start_worker,
    trial_result,
)
from ..search._hub import HubSampler, is_hub, local_sampler_names, parse_sampler_options
from ._app import DataRootOption, command, console
from ._errors import debug_enabled, quiet_optuna, worker_setup
from ._options import ThreadsOption

# --- shared options --------------------------------------------------------------------------------------

SpaceOption = Annotated[str, typer.Option(help="Search space.")]
DatasetOption = Annotated[
    str | None,
    typer.Option(help="Dataset (sets the classifier head and the ground truth; default: the space's first)."),
]
NTrialsOption = Annotated[int, typer.Option("--n-trials", help="Trials the study runs, across all its workers.")]
ObjectivesOption = Annotated[
    str | None,
    typer.Option(help="score, score,params or score,flops (default: score,params for nsga2, score otherwise)."),
]
MaxParamsOption = Annotated[
    float | None, typer.Option("--max-params", help="Constraint: at most this many parameters.")
]
MaxFlopsOption = Annotated[float | None, typer.Option("--max-flops", help="Constraint: at most this many FLOPs.")]
TeacherOption = Annotated[
    str | None, typer.Option(help="Teacher of teacher-aware proxies (default: the space's, resnet56 for nb201).")
]
TeacherWeightsOption = Annotated[
    str | None, typer.Option("--teacher-weights", help="State-dict file of a trained teacher.")
]
BatchSizeOption = Annotated[
    int,
    typer.Option("--batch-size", help="Examples (images, or token sequences for a text space) in the proxies' batch."),
]
ScoreSeedOption = Annotated[
    int, typer.Option("--score-seed", help="Seed of the scores (batch, initialisation); kept apart from --seed.")
]
InitOption = Annotated[str, typer.Option(help="Initialisation of the random networks (default or diswot).")]
CacheOption = Annotated[
    str,
    typer.Option(help="Score cache database URL, shared by all runs and workers (default: results/scores.db here, "
                 "made absolute; a study keeps its cache for later runs and workers)."),
]  # fmt: skip
StorageOption = Annotated[
    str | None,
    typer.Option(help="Optuna storage: a journal file path, sqlite:///PATH, postgresql://... or memory "
                 "(default: a journal file in the run folder)."),
]  # fmt: skip
DeviceOption = Annotated[str, typer.Option(help="auto (a GPU where there is one), cpu, cuda, cuda:1, ...")]
PopulationOption = Annotated[
    int | None, typer.Option("--population", help="Population size of nsga2 and re (default 20).")
]
SampleSizeOption = Annotated[int | None, typer.Option("--sample-size", help="Tournament size of re (default 5).")]
SamplerOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sampler-option",
        help="KEY=VALUE for a hub: sampler's constructor, repeatable; VALUE is read as JSON where it parses.",
    ),
]
HubRegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--hub-registry",
        help="Local OptunaHub registry folder (holding samplers/NAME/) for hub: samplers; default: the online one.",
    ),
]
IncludeInvalidOption = Annotated[
    bool,
    typer.Option(
        "--include-invalid",
        help="Score invalid networks (e.g. NB201 cells whose input never reaches the output) like any other; "
        "by default their trials are pruned with the reason, unscored.",
    ),
]


def _absolute(path: Path | None) -> str | None:
    return str(path.expanduser().resolve()) if path is not None else None


@contextlib.contextmanager
def _progress(worker: Worker, enabled: bool) -> Iterator[Any]:
    """A progress bar over the study's budget, advanced by every counted trial (of any worker)."""
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )  # fmt: skip
    with Progress(*columns, console=console, disable=not enabled, transient=False) as progress:
        task = progress.add_task(worker.config.study_name, total=worker.config.n_trials, status="")
        progress.update(task, completed=worker.counts().counted)
        best: list[float] = []

        def on_trial(trial: optuna.trial.FrozenTrial, counts: Counts) -> None:
            result = trial_result(trial)
            score = result.get("score")
            # Only a trial within the budget can be the result: an over-budget score is no "best".
            if score is not None and trial.state == optuna.trial.TrialState.COMPLETE and result.get("feasible", True):
                best[:] = [max(best[0], score)] if best else [score]
            status = f"best score {best[0]:.4g}" if best else ""
            progress.update(task, completed=min(counts.counted, worker.config.n_trials), status=status)

        yield on_trial


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "-"
    return format(value, spec)


#: Ground-truth columns of the summary, shown only where some row has a value (a text space has no
#: validation or test accuracy).
TRUTH_COLUMNS = {"val_acc": "val acc", "test_acc": "test acc", "glue_avg": "GLUE avg",
                 "top_percent_test_acc": "top % (test)"}  # fmt: skip


def _result_table(title: str, rows: list[dict[str, Any]]) -> Table:
    truth = [k for k in TRUTH_COLUMNS if any(_fmt(r.get(k)) != "-" for r in rows)]
    table = Table("trial", "arch", "index", "score", "params", "MFLOPs", *(TRUTH_COLUMNS[k] for k in truth),
                  title=title)  # fmt: skip
    for r in rows:
        flops = r.get("flops")
        table.add_row(
            _fmt(r.get("number")), _fmt(r.get("arch")), _fmt(r.get("index")), _fmt(r.get("score"), ".5g"),
            _fmt(r.get("params"), ","), _fmt(flops / 1e6 if flops is not None else None, ",.1f"),
            *(_fmt(r.get(k), ".2f") for k in truth),
        )  # fmt: skip
    return table


def _print_summary(worker: Worker, frame: pd.DataFrame, best: Any, out_dir: Path, result: LoopResult) -> None:
    """The result, then one line about the study and one about this run (its trials, where its scores came
    from, the score cache it used), then what was written."""
    if isinstance(best, pd.DataFrame):
        rows = best.head(10).to_dict("records")
        more = f" (first 10 of {len(best)})" if len(best) > 10 else ""
        console.print(_result_table(f"Pareto front: {' vs '.join(worker.config.objectives)}{more}", rows))
    elif best is not None:
        console.print(_result_table("Best architecture by proxy score", [best]))
        if best.get("tied"):
            console.print(f"{best['tied']} other architecture(s) had the same score; the tie went to the cheapest "
                          "(fewest FLOPs, then parameters)")  # fmt: skip
    else:
        console.print("[yellow]no feasible trial completed[/]")
    states = frame["state"].value_counts().to_dict()
    space_best = worker.ground_truth.best("test_acc")
    note = f"; the space's best test accuracy is {space_best:.2f}" if space_best is not None else ""
    console.print(
        f"study: {worker.counts().counted} of {worker.config.n_trials} trials counted "
        f"({', '.join(f'{n} {s.lower()}' for s, n in states.items())}){note}"
    )
    cache = absolute_url(worker.config.cache)
    if result.trials:
        mine = frame[frame["number"].isin(result.trials)]
        cached = int(mine["cached"].fillna(False).astype(bool).sum())
        invalid = int((mine["score_status"] == "invalid").sum()) if "score_status" in mine.columns else 0
        skipped = f", {invalid} invalid cell(s) never scored" if invalid else ""
        seconds = (datetime.now() - worker.started).total_seconds()
        console.print(
            f"this run: {len(result.trials)} trials in {seconds:.1f} s; {len(mine) - cached - invalid} scores "
            f"computed, {cached} from the score cache {cache}{skipped}",
            soft_wrap=True,
        )
    else:
        console.print(f"this run: no trial left to run; the scores are in the score cache {cache}", soft_wrap=True)
    written = ", ".join(p.name for p in sorted(out_dir.glob("*")) if p.suffix in (".csv", ".json"))
    console.print(f"written to {out_dir}: {written}", soft_wrap=True)


def _check_before_study(config: RunConfig, storage: str | None, out_dir: Path, data_root: Path | None) -> None:
    """What can be checked before a study or its journal is made: the run folder can be written, a storage
    path names a file, the teacher's weights are readable, the seeds are valid, the data opens and holds a
    batch."""
    from ..files import load_torch

    check_writable_dir(out_dir, "run folder")
    if storage and "://" not in storage and storage != "memory" and Path(storage).expanduser().is_dir():
        raise ValueError(f"--storage {storage} is a folder; name a journal file in it (e.g. {storage}/journal.log)")
    if config.teacher_weights:
        load_torch(config.teacher_weights, "teacher weights")
    if config.score_seed < 0 or config.seed < 0:
        raise ValueError(f"--seed and --score-seed must be 0 or positive, got {config.seed} and {config.score_seed}")
    _check_batch(config, data_root)


def _check_batch(config: RunConfig, data_root: Path | None) -> None:
    """The proxy batch fits in the training images (which are listed, not decoded, and kept for the run)."""
    from proxies import get_proxy
    from spaces import get_space

    if getattr(get_space(config.space), "input_kind", "image") != "image" or not get_proxy(config.proxy).needs_data:
        return
    from ..data import images_for, open_split

    images = images_for(config.dataset, data_root)
    available = len(open_split(images, "train", root=data_root))
    if config.batch_size > available:
        raise ValueError(f"--batch-size {config.batch_size} exceeds the {available:,} training images of {images}")


@command(name="run")
def run_command(
    space: SpaceOption = "nb201",
    proxy: Annotated[str, typer.Option(help="Proxy whose score is searched (see bench proxies).")] = "diswot",
    sampler: Annotated[
        str, typer.Option(help="Optuna sampler, or hub:PACKAGE[:CLASS] from OptunaHub (see bench samplers).")
    ] = "nsga2",
    dataset: DatasetOption = None,
    n_trials: NTrialsOption = DEFAULT_N_TRIALS,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    teacher: TeacherOption = None,
    objectives: ObjectivesOption = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    storage: StorageOption = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="Default: from the run's settings.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: results/<study name>).")] = None,
    population: PopulationOption = None,
    sample_size: SampleSizeOption = None,
    sampler_option: SamplerOptionOption = None,
    hub_registry: HubRegistryOption = None,
    teacher_weights: TeacherWeightsOption = None,
    batch_size: BatchSizeOption = 64,
    score_seed: ScoreSeedOption = 0,
    init: InitOption = "default",
    cache: CacheOption = DEFAULT_CACHE,
    include_invalid: IncludeInvalidOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Search a space with a proxy and a sampler: one Optuna study, resumed where it stopped."""
    quiet_optuna()
    config = RunConfig(
        space=space, proxy=proxy, sampler=sampler, dataset=dataset, n_trials=n_trials, seed=seed,
        objectives=parse_objectives(objectives), max_params=max_params, max_flops=max_flops, teacher=teacher,
        teacher_weights=teacher_weights, batch_size=batch_size, score_seed=score_seed, init=init,
        population_size=population, sample_size=sample_size, cache=cache, study_name=study_name or "",
        include_invalid=include_invalid, sampler_options=parse_sampler_options(sampler_option),
        hub_registry=_absolute(hub_registry),
    ).resolved()  # fmt: skip
    if is_hub(config.sampler) and not HubSampler.load(config.sampler, config.hub_registry).takes("seed"):
        console.print(f"[yellow]sampler {config.sampler} takes no seed: --seed cannot make its proposals repeatable[/]")
    out_dir = out_dir_for(config, out)
    _check_before_study(config, storage, out_dir, data_root)
    worker = start_worker(
        config, storage=storage, out_dir=out_dir, device=device, data_root=str(data_root) if data_root else None
    )
    console.print(
        f"study [bold]{config.study_name}[/] in {worker.opened.display}: {config.proxy} on {config.space}/"
        f"{config.dataset} by {config.sampler} ({', '.join(config.objectives)}), {config.n_trials} trials, "
        f"device {worker.device}" + (f", teacher {config.teacher}" if config.teacher else ""),
        soft_wrap=True,
    )
    if worker.config.images:
        console.print(
            f"{config.dataset} images are not under the data root: the proxies score "
            f"{worker.config.images} images under the {config.dataset} classifier head"
        )
    if worker.remaining():
        with _progress(worker, progress) as on_trial:
            result = worker.run(on_trial)
    else:
        console.print(f"study complete: {worker.counts().counted} of {config.n_trials} trials")
        result = LoopResult()
    frame, best = worker.write(out_dir, result)
    _print_summary(worker, frame, best, out_dir, result)


@command(name="worker")
def worker_command(
    study_name: Annotated[str, typer.Option("--study-name", help="The study to join (created by bench run).")],
    storage: Annotated[str, typer.Option(help="The study's shared storage: a journal file or a database URL.")],
    device: DeviceOption = "auto",
    cache: Annotated[str | None, typer.Option(help="Score cache URL (default: the study's).")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the study to be created.")] = 120.0,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Join a study through its shared storage and run its trials until the study's budget is spent."""
    quiet_optuna()
    worker = join_worker(
        study_name, storage=storage, device=device, data_root=str(data_root) if data_root else None,
        cache=cache, wait=wait,
    )  # fmt: skip
    with _progress(worker, progress) as on_trial:
        result = worker.run(on_trial)
    counts = worker.counts()
    console.print(
        f"worker done: ran {len(result.trials)} trials of {study_name} "
        f"({counts.counted}/{worker.config.n_trials} counted in the study); sampler seed {worker.sampler_seed}"
    )


@command(name="sweep")
def sweep_command(
    samplers: Annotated[
        str, typer.Option(help="Comma-separated samplers, hub:PACKAGE ones included.")
    ] = "nsga2,tpe,random,re",
    proxies: Annotated[str, typer.Option(help="Comma-separated proxies (wildcards allowed).")] = "params",
    seeds: Annotated[str, typer.Option(help="Sampler seeds: 0-9, 0,1,2 or a mix.")] = "0",
    n_trials: NTrialsOption = DEFAULT_N_TRIALS,
    space: SpaceOption = "nb201",
    dataset: DatasetOption = None,
    objectives: ObjectivesOption = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    teacher: TeacherOption = None,
    teacher_weights: TeacherWeightsOption = None,
    population: PopulationOption = None,
    sample_size: SampleSizeOption = None,
    sampler_option: SamplerOptionOption = None,
    hub_registry: HubRegistryOption = None,
    batch_size: BatchSizeOption = 64,
    score_seed: ScoreSeedOption = 0,
    init: InitOption = "default",
    cache: CacheOption = DEFAULT_CACHE,
    storage: Annotated[
        str | None, typer.Option(help="One storage for every cell's study (default: a journal file per cell).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Sweep folder (default: results/sweep-<space>-<dataset>).")] = None,
    jobs: Annotated[int, typer.Option(help="Cells run in parallel processes.")] = 1,
    include_invalid: IncludeInvalidOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Run a comparison grid: one study per (sampler, proxy, seed) cell, and one combined trials table."""
    from proxies import parse_proxy_list
    from spaces import get_space

    quiet_optuna()
    dataset = dataset or next(iter(get_space(space).num_classes))
    base = RunConfig(
        space=space, dataset=dataset, n_trials=n_trials, objectives=parse_objectives(objectives),
        max_params=max_params, max_flops=max_flops, teacher=teacher, teacher_weights=teacher_weights,
        batch_size=batch_size, score_seed=score_seed, init=init, population_size=population,
        sample_size=sample_size, cache=cache, include_invalid=include_invalid,
        sampler_options=parse_sampler_options(sampler_option), hub_registry=_absolute(hub_registry),
    )  # fmt: skip
    out_dir = out or Path("results") / f"sweep-{space}-{dataset}"
    check_writable_dir(out_dir, "sweep folder")
    kind = getattr(get_space(space), "input_kind", "image")
    cells = grid(base, parse_samplers(samplers), parse_proxy_list(proxies, kind), parse_seeds(seeds), out_dir)
    console.print(f"sweep of {len(cells)} studies into {out_dir} ({jobs} at a time)")
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]cells"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("cells", total=len(cells))
        _, summary = run_sweep(
            cells, out=out_dir, storage=storage, jobs=jobs, device=device,
            data_root=str(data_root) if data_root else None, on_cell=lambda _: bar.advance(task),
            initializer=functools.partial(worker_setup, debug_enabled()),
        )  # fmt: skip
    table = aggregate(summary)
    shown = Table(*table.columns, title="Architecture picked by the proxy: ground truth over seeds")
    for row in table.itertuples(index=False):
        shown.add_row(*(_fmt(v, ".2f") if isinstance(v, float) else str(v) for v in row))
    console.print(shown)
    console.print(
        f"{len(cells)} studies in {time.perf_counter() - start:.1f} s; written to {out_dir}: trials.csv, cells.csv"
    )


HUB_HELP = (
    "hub:PACKAGE[@REF][:CLASS] runs a sampler published on OptunaHub (hub.optuna.org), e.g. --sampler "
    "hub:samplers/auto_sampler: loaded with optunahub.load_module from the online registry (@REF: a branch, tag or "
    "commit), or with --hub-registry DIR from a local registry folder holding DIR/samplers/NAME/ (no network). "
    "Options reach its constructor with --sampler-option KEY=VALUE; it gets the study's per-trial seed where it "
    "takes seed. The run's manifest.json records the package, its source and the SHA-256 of its files."
)


@command(name="samplers")
def samplers_command(
    pattern: Annotated[str, typer.Argument(help="Wildcard filter.")] = "*",
    hub_registry: Annotated[
        Path | None, typer.Option("--hub-registry", help="Also list the samplers of this local OptunaHub registry.")
    ] = None,
) -> None:
    """List the registered samplers and what they support."""
    table = Table("sampler", "multi-objective", "constraints", "description")
    names = SAMPLERS.names(pattern)
    registry = str(hub_registry) if hub_registry is not None else None
    if hub_registry is not None:
        if not hub_registry.is_dir():
            raise FileNotFoundError(f"--hub-registry {hub_registry}: no such folder")
        names += [n for n in local_sampler_names(hub_registry) if fnmatch.fnmatchcase(n, pattern)]
    for name in names:
        spec = sampler_spec(name, registry=registry if is_hub(name) else None)
        table.add_row(
            name, "yes" if spec.multi_objective else "no", "yes" if spec.constraints else "no", spec.description
        )
    console.print(table)
    console.print(HUB_HELP, soft_wrap=True, markup=False, highlight=False)
