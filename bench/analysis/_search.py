"""Search-comparison metrics: what each (sampler, proxy) found, how far from the optimum, how fast.

Definitions (all in accuracy points of the chosen ground truth; the search never saw it):

- **evaluations** are a run's trials in the order of their number, counting the complete ones and the
  pruned ones (a proxy that failed on the architecture) but not the failed ones (a worker that stopped;
  the search retries them); the comparison uses a common budget B, by default the smallest number of
  evaluations of any run in the table.
- **chosen architecture** after b evaluations: among the completed trials so far that satisfy the run's
  cost limits (``feasible``) and have a finite score, the one with the highest proxy score (the earliest
  on a tie). A completed trial whose score is not finite (NaN, inf) is never chosen and is counted
  (``nonfinite``), as are the infeasible (``infeasible``) and pruned (``pruned``) ones. For a
  multi-objective run this is the member of the found Pareto front with the best score, since the
  highest-scoring trial is always on the front.
- **regret** = the space's optimum (the largest ground truth of any architecture) minus the chosen
  architecture's ground truth. Before any trial has completed the searcher knows nothing, and the
  regret is that of the worst architecture (optimum minus the smallest ground truth).
- **anytime regret** at b = the regret after b evaluations; **AUC** = the mean of the anytime regret
  over b = 1..B (the area under the step curve divided by B, in accuracy points).
- **average rank**: for each seed every method has, the methods are ranked by final regret (1 = lowest,
  ties share the mean rank); the ranks are averaged over those seeds. Friedman's test asks whether the
  methods differ at all, Nemenyi's post-hoc test which pairs do (see :mod:`bench.analysis._significance`).
- **pairwise tests**: runs of one seed are paired (the searches share their seed), so by default the
  two-sided Wilcoxon signed-rank test on the seeds both methods have; the unpaired Mann-Whitney U test on
  request. p-values are Holm-corrected over all pairs of methods of a dataset, for each measure (final
  regret, which is the pick's accuracy mirrored, regret@k, AUC, hypervolume ratio).
- **best**: a table marks a method best on a measure only where the corrected test separates it from
  every other method in its favour at alpha (for the average rank: Friedman's test rejects and Nemenyi's
  test separates it from every other); never where methods tie for the best value.
- **design floor**: the smallest corrected p-value the number of seeds and methods allows; where it is
  not below alpha, nothing can be significant, and the report says so.
- **hypervolume** (multi-objective runs): the found front is the non-dominated set of completed feasible
  trials in the search's own objectives; its members are placed in (ground-truth accuracy, params), both
  scaled to [0, 1] over the space (accuracy from worst to best, params from largest to smallest), and
  the hypervolume is taken against the reference point (0, 0), i.e. (worst accuracy, largest
  network). ``hv_ratio`` divides it by the hypervolume of the space's true front.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spaces import get_space

from ._scores import canonical_archs
from ._significance import (
    TEST_NAMES,
    FriedmanResult,
    check_test,
    design_floor,
    friedman_test,
    pair_separates,
    pairwise_tests,
    rank_separates,
    seeds_needed,
    separated_best,
)
from ._stats import hypervolume_2d, pareto_mask
from ._trials import EVALUATED_STATES, METHOD_KEYS, RUN_KEYS

DEFAULT_CHECKPOINTS: tuple[int, ...] = (10, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
DEFAULT_TEST = "wilcoxon"
#: Directions of the search's objectives when a run does not say: the proxy score up, the cost down.
DEFAULT_DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class SpaceTruth:
    """The ground truth of every architecture of a space for one dataset, and their parameter counts."""

    accuracy: pd.Series
    params: pd.Series

    @property
    def optimum(self) -> float:
        return float(self.accuracy.max())

    @property
    def worst(self) -> float:
        return float(self.accuracy.min())

    def normalised(self, archs: Sequence[str]) -> np.ndarray:
        """(accuracy, smallness) of each architecture scaled to [0, 1] over the space (for hypervolume)."""
        acc = self.accuracy.loc[list(archs)].to_numpy(float)
        params = self.params.loc[list(archs)].to_numpy(float)
        p_min, p_max = float(self.params.min()), float(self.params.max())
        return np.column_stack(
            [(acc - self.worst) / (self.optimum - self.worst), (p_max - params) / max(p_max - p_min, 1.0)]
        )

    @functools.cached_property
    def front_hypervolume(self) -> float:
        """The hypervolume of the space's own Pareto front (computed once)."""
        points = self.normalised(self.accuracy.index)
        return hypervolume_2d(points[pareto_mask(points)], (0.0, 0.0))

    def true_front(self) -> pd.DataFrame:
        points = self.normalised(self.accuracy.index)
        on_front = self.accuracy.index[pareto_mask(points)]
        return pd.DataFrame(
            {"arch": on_front, "accuracy": self.accuracy.loc[on_front].to_numpy(), "params": self.params.loc[on_front]}
        ).sort_values("params", kind="stable")


def space_truth(accuracy: pd.Series, *, space: str, dataset: str) -> SpaceTruth:
    """Pair a ground-truth series (indexed by canonical arch) with each architecture's parameter count."""
    sp = get_space(space)
    if dataset not in sp.num_classes:
        raise ValueError(f"space {space!r} has no dataset {dataset!r}. Valid choices: {', '.join(sp.num_classes)}")
    classes = sp.num_classes[dataset]
    params = pd.Series({a: sp.cost(sp.parse(a), classes).params for a in accuracy.index}, dtype=float)
    return SpaceTruth(accuracy=accuracy.astype(float), params=params)


@dataclass
class SearchReport:
    """Every table the search comparison produces (see the module docstring for the definitions).

    ``pairwise`` holds the tests on final regret (the table shown), ``tests`` those of every measure;
    ``ranks`` the average ranks over complete blocks, ``friedman`` the rank tests per (space, dataset),
    ``design`` what each (space, dataset) can detect, and ``warnings`` one line for each that cannot.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    pairwise: pd.DataFrame
    curves: pd.DataFrame
    fronts: pd.DataFrame
    budget: dict[tuple[str, str], int]
    checkpoints: list[int]
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    ranks: pd.DataFrame = field(default_factory=pd.DataFrame)
    friedman: dict[tuple[str, str], FriedmanResult] = field(default_factory=dict)
    design: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    test: str = DEFAULT_TEST
    alpha: float = 0.05
    #: The space's best ground truth per (space, dataset): the "optimal" row of the tables.
    optima: dict[tuple[str, str], float] = field(default_factory=dict)


def _regret_curve(run: pd.DataFrame, truth: SpaceTruth, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Regret after each of the first ``budget`` evaluations, and the chosen trial's position (-1: none)."""
    best_score = -math.inf
    chosen = -1
    regrets = np.empty(budget)
    picks = np.empty(budget, dtype=int)
    max_regret = truth.optimum - truth.worst
    for b, ok in enumerate(_eligible(run)[:budget]):
        score = float(run["score"].iat[b])
        # Strictly greater: on a tie the earlier trial stays chosen.
        if ok and score > best_score:
            best_score, chosen = score, b
        picks[b] = chosen
        regrets[b] = max_regret if chosen < 0 else truth.optimum - truth.accuracy[run["arch"].iat[chosen]]
    return regrets, picks


def _eligible(run: pd.DataFrame) -> np.ndarray:
    """Completed, feasible trials with a finite score: the only ones a pick can be."""
    complete = run["state"].to_numpy() == "COMPLETE"
    return complete & run["feasible"].to_numpy(bool) & np.isfinite(run["score"].to_numpy(float))


def _counts(run: pd.DataFrame, budget: int) -> dict[str, int]:
    """How the first ``budget`` evaluations of a run ended, so that a table says what it left out."""
    seen = run.iloc[:budget]
    complete = seen["state"].to_numpy() == "COMPLETE"
    finite = np.isfinite(seen["score"].to_numpy(float))
    return {
        "completed": int(complete.sum()),
        "nonfinite": int((complete & ~finite).sum()),
        "infeasible": int((complete & finite & ~seen["feasible"].to_numpy(bool)).sum()),
        "pruned": int((seen["state"].to_numpy() == "PRUNED").sum()),
    }


def _found_front(run: pd.DataFrame, directions: Sequence[str]) -> pd.DataFrame:
    done = run[_eligible(run)]
    objectives = done[["value_0", "value_1"]].to_numpy(float)
    done = done[np.isfinite(objectives).all(axis=1)]
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions[:2]])
    return done[pareto_mask(done[["value_0", "value_1"]].to_numpy(float) * signs)]


def _method(frame: pd.DataFrame) -> pd.Series:
    return frame["sampler"].astype(str) + " / " + frame["proxy"].astype(str)


def _measures(per_run: pd.DataFrame, checkpoints: Sequence[int]) -> dict[str, bool]:
    """The per-run measures tested pairwise, each with whether higher is better."""
    measures = {"regret": False, **{f"regret@{c}": False for c in checkpoints}, "auc": False}
    if "hv_ratio" in per_run.columns and per_run["hv_ratio"].notna().any():
        measures["hv_ratio"] = True
    return measures


def _compare(
    group: pd.DataFrame, measures: dict[str, bool], test: str, alpha: float
) -> tuple[pd.DataFrame, FriedmanResult, dict[str, str | None]]:
    """The tests of one (space, dataset): pairwise per measure, Friedman on final regret, and the best method
    each measure may mark (None where no test separates one)."""
    frames, best = [], {}
    for measure, higher in measures.items():
        values = group.pivot(index="seed", columns="method", values=measure).dropna(axis=1, how="all")
        tests = pairwise_tests(values, higher_is_better=higher, test=test, alpha=alpha)
        if tests.empty:
            best[measure] = None
            continue
        frames.append(tests.assign(measure=measure))
        means = group.groupby("method")[measure].mean()
        best[measure] = separated_best(means, higher_is_better=higher, separated=pair_separates(tests))
    regret = group.pivot(index="seed", columns="method", values="regret")
    friedman = friedman_test(regret, higher_is_better=False, alpha=alpha)
    best["avg_rank"] = separated_best(friedman.avg_ranks, higher_is_better=False, separated=rank_separates(friedman))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), friedman, best


def _design(
    space: str, dataset: str, tests: pd.DataFrame, friedman: FriedmanResult, test: str, alpha: float
) -> tuple[dict[str, object], list[str]]:
    """What one (space, dataset) can detect, and a warning line for each test that can find nothing."""
    methods = len(friedman.methods)
    primary = tests[tests["measure"] == "regret"] if not tests.empty else tests
    seeds = int(primary["n_pairs" if test == "wilcoxon" else "n_a"].max()) if not primary.empty else 0
    pairs = len(primary)
    floor = design_floor(test, seeds, methods) if pairs else 1.0
    row = {
        "space": space,
        "dataset": dataset,
        "methods": methods,
        "seeds": seeds,
        "pairs": pairs,
        "test": test,
        "p_floor": floor,
        "reachable": floor < alpha,
        "seeds_needed": seeds_needed(test, methods, alpha) if methods > 1 else 0,
        "friedman_blocks": friedman.n_blocks,
        "friedman_floor": friedman.floor_friedman,
        "nemenyi_floor": friedman.floor_nemenyi,
    }
    found = []
    if pairs and floor >= alpha:
        found.append(
            f"{space}/{dataset}: with {seeds} seeds and {pairs} pairs of methods the smallest p-value of the "
            f"{TEST_NAMES[test]} test after Holm's correction is {floor:.3g}, so no difference can be significant "
            f"at {alpha:g}; {row['seeds_needed']} seeds per method could show one"
        )
    if math.isfinite(friedman.statistic) and friedman.floor_nemenyi >= alpha:
        found.append(
            f"{space}/{dataset}: with {friedman.n_blocks} seeds Nemenyi's test cannot separate any two of the "
            f"{methods} methods at {alpha:g} (its smallest p-value is {friedman.floor_nemenyi:.3g})"
        )
    return row, found


def search_report(
    trials: pd.DataFrame,
    truths: dict[tuple[str, str], SpaceTruth],
    *,
    budget: int | None = None,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    test: str = DEFAULT_TEST,
    alpha: float = 0.05,
    directions: Sequence[str] = DEFAULT_DIRECTIONS,
) -> SearchReport:
    """Compute every search table from a trials table and the ground truth of each (space, dataset)."""
    check_test(test)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if any(c < 1 for c in checkpoints):
        raise ValueError(f"checkpoints count evaluations and must be >= 1, got {list(checkpoints)}")
    if trials.empty:
        raise ValueError("the trials table is empty")
    frame = trials[trials["state"].isin(EVALUATED_STATES)].copy()
    if "feasible" not in frame.columns:
        frame["feasible"] = True
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    frame["arch"] = _canonical_by_space(frame)
    frame = frame.sort_values([*RUN_KEYS, "number"], kind="stable")
    budgets: dict[tuple[str, str], int] = {}
    optima: dict[tuple[str, str], float] = {}
    run_rows, curve_rows, front_rows = [], [], []
    for (space, dataset), group in frame.groupby(["space", "dataset"], sort=True):
        if (space, dataset) not in truths:
            raise ValueError(f"no ground truth given for space {space!r}, dataset {dataset!r}")
        truth = truths[(space, dataset)]
        unknown = sorted(set(group["arch"]) - set(truth.accuracy.index))
        if unknown:
            raise ValueError(f"the ground truth lacks {len(unknown)} searched architecture(s), e.g. {unknown[0]}")
        sizes = group.groupby(RUN_KEYS).size()
        b_max = int(sizes.min())
        if budget is not None and budget > b_max:
            short = sizes[sizes < budget].index.tolist()
            raise ValueError(f"budget {budget} exceeds the evaluations of run(s) {short} (smallest: {b_max})")
        b = budget or b_max
        budgets[(space, dataset)] = b
        optima[(space, dataset)] = float(truth.optimum)
        for key, run in group.groupby(RUN_KEYS, sort=True):
            row, regrets, front = _run_row(run, dict(zip(RUN_KEYS, key)), truth, b, checkpoints, directions)
            run_rows.append(row)
            front_rows += front
            curve_rows += [{**dict(zip(RUN_KEYS, key)), "evaluations": i, "regret": float(r)}
                           for i, r in enumerate(regrets, start=1)]  # fmt: skip
    per_run = pd.DataFrame(run_rows)
    per_run["rank"] = per_run.groupby(["space", "dataset", "seed"])["regret"].rank(method="average")
    kept = [c for c in checkpoints if f"regret@{c}" in per_run.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN hypervolume column of single-objective runs
        summary = _summarise(per_run, kept)
    report = SearchReport(
        runs=per_run,
        summary=summary,
        pairwise=pd.DataFrame(),
        curves=pd.DataFrame(curve_rows),
        fronts=pd.DataFrame(front_rows),
        budget=budgets,
        checkpoints=kept,
        test=test,
        alpha=alpha,
        optima=optima,
    )
    _add_tests(report, _measures(per_run, kept))
    return report


def _run_row(
    run: pd.DataFrame, keys: dict[str, object], truth: SpaceTruth, b: int, checkpoints: Sequence[int],
    directions: Sequence[str],
) -> tuple[dict[str, object], np.ndarray, list[dict[str, object]]]:  # fmt: skip
    """One run's row of the runs table (its pick, regret, AUC, cost, hypervolume), its anytime regret and the
    front it found (multi-objective runs)."""
    regrets, picks = _regret_curve(run, truth, b)
    last = picks[-1]
    row = dict(keys)
    row.update(
        study=str(run["study"].iat[0]) if "study" in run.columns else "",
        evaluations=len(run),
        budget=b,
        **_counts(run, b),
        chosen_arch=run["arch"].iat[last] if last >= 0 else "",
        chosen_score=float(run["score"].iat[last]) if last >= 0 else math.nan,
        chosen_acc=truth.optimum - regrets[-1] if last >= 0 else math.nan,
        regret=float(regrets[-1]),
        auc=float(regrets.mean()),
        **_cost(run.iloc[:b]),
    )
    for c in checkpoints:
        if c <= b:
            row[f"regret@{c}"] = float(regrets[c - 1])
    fronts: list[dict[str, object]] = []
    if "value_1" in run.columns and run.loc[run["state"] == "COMPLETE", "value_1"].notna().any():
        front = _found_front(run.iloc[:b], directions)
        row["hypervolume"] = hypervolume_2d(truth.normalised(front["arch"]), (0.0, 0.0))
        row["hv_ratio"] = row["hypervolume"] / truth.front_hypervolume
        fronts = [{**keys, "arch": arch, "accuracy": float(truth.accuracy[arch]), "params": float(truth.params[arch])}
                  for arch in front["arch"]]  # fmt: skip
    return row, regrets, fronts


def _cost(run: pd.DataFrame) -> dict[str, float]:
    """What the run's evaluations would cost without a cache, where the trials say (a ``cost`` column in seconds):
    each distinct architecture once, as a search pays for a repeat only the first time; and their number."""
    if "cost" not in run.columns:
        return {}
    first = run.drop_duplicates("arch")
    costs = pd.to_numeric(first["cost"], errors="coerce")
    return {"cost": float(costs.sum()) if costs.notna().all() else math.nan, "distinct": len(first)}


def _add_tests(report: SearchReport, measures: dict[str, bool]) -> None:
    """Fill the report's tests, ranks, design and warnings, and mark in the summary the cells a test makes best."""
    per_run = report.runs.assign(method=_method(report.runs))
    summary = report.summary.assign(method=_method(report.summary))
    tests, ranks, design = [], [], []
    bold = {f"best_{m}": np.zeros(len(summary), dtype=bool) for m in [*measures, "chosen_acc", "avg_rank"]}
    for (space, dataset), group in per_run.groupby(["space", "dataset"], sort=True):
        found, friedman, best = _compare(group, measures, report.test, report.alpha)
        report.friedman[(space, dataset)] = friedman
        tests.append(found.assign(space=space, dataset=dataset))
        row, warned = _design(space, dataset, found, friedman, report.test, report.alpha)
        design.append(row)
        report.warnings.extend(warned)
        here = ((summary["space"] == space) & (summary["dataset"] == dataset)).to_numpy()
        best["chosen_acc"] = best["regret"]  # the pick's accuracy is the optimum minus its regret
        for measure, method in best.items():
            bold[f"best_{measure}"] |= here & (summary["method"] == method).to_numpy()
        avg = friedman.avg_ranks
        summary.loc[here, "avg_rank"] = summary.loc[here, "method"].map(avg).to_numpy(float)
        ranks.append(
            pd.DataFrame(
                {
                    "space": space,
                    "dataset": dataset,
                    "method": avg.index,
                    "avg_rank": avg.to_numpy(float),
                    "best_avg_rank": avg.index == best["avg_rank"],
                }
            )
        )
    tests_frame = pd.concat(tests, ignore_index=True)
    if not tests_frame.empty:
        lead = ["space", "dataset", "measure"]
        tests_frame = tests_frame[lead + [c for c in tests_frame.columns if c not in lead]]
    report.tests = tests_frame
    report.pairwise = (
        tests_frame[tests_frame["measure"] == "regret"].reset_index(drop=True) if len(tests_frame) else tests_frame
    )
    ranks_frame = pd.concat(ranks, ignore_index=True).sort_values(["space", "dataset", "avg_rank"], kind="stable")
    split = ranks_frame["method"].str.split(" / ", n=1, expand=True)
    report.ranks = ranks_frame.assign(sampler=split[0], proxy=split[1]).reset_index(drop=True)
    report.design = pd.DataFrame(design)
    report.summary = summary.assign(**bold).drop(columns="method")


def _canonical_by_space(frame: pd.DataFrame) -> pd.Series:
    out = pd.Series(index=frame.index, dtype=object)
    for space, group in frame.groupby("space", sort=False):
        try:
            out.loc[group.index] = canonical_archs(group["arch"], space).to_numpy()
        except ValueError as err:
            raise ValueError(f"trials table: {err}") from None
    return out


def _summarise(per_run: pd.DataFrame, checkpoints: Sequence[int]) -> pd.DataFrame:
    measures = ["chosen_acc", "regret", *[f"regret@{c}" for c in checkpoints], "auc"]
    measures += [m for m in ("cost", "distinct") if m in per_run.columns]  # described, never tested
    if "hypervolume" in per_run.columns:
        measures += ["hypervolume", "hv_ratio"]
    rows = []
    for key, group in per_run.groupby(["space", "dataset", *METHOD_KEYS], sort=True):
        row: dict[str, object] = dict(zip(["space", "dataset", *METHOD_KEYS], key))
        row["seeds"] = len(group)
        row["budget"] = int(group["budget"].iat[0])
        for count in ("completed", "nonfinite", "infeasible", "pruned"):
            row[count] = int(group[count].sum())
        for m in measures:
            values = group[m].dropna().to_numpy(float)
            if m in ("hypervolume", "hv_ratio") and len(values) == 0:
                row[f"{m}_mean"] = row[f"{m}_std"] = math.nan
                continue
            row[f"{m}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["avg_rank"] = float(group["rank"].mean())
        rows.append(row)
    return pd.DataFrame(rows)
