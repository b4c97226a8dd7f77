"""Search-comparison metrics: what each (sampler, proxy) found, how far from the optimum, how fast.

Definitions (all in accuracy points of the chosen ground truth; the search never saw it):

- **evaluations** are a run's trials in the order of their number, counting the complete ones and the
  pruned ones (a proxy that failed on the architecture) but not the failed ones (a worker that stopped;
  the search retries them); the comparison uses a common budget B, by default the smallest number of
  evaluations of any run in the table.
- **chosen architecture** after b evaluations: among the completed trials so far that satisfy the run's
  cost limits (``feasible``), the one with the highest proxy score (the earliest on a tie). For a
  multi-objective run this is the member of the found Pareto front with the best score, since the
  highest-scoring trial is always on the front.
- **regret** = the space's optimum (the largest ground truth of any architecture) minus the chosen
  architecture's ground truth. Before any trial has completed the searcher knows nothing, and the
  regret is that of the worst architecture (optimum minus the smallest ground truth).
- **anytime regret** at b = the regret after b evaluations; **AUC** = the mean of the anytime regret
  over b = 1..B (the area under the step curve divided by B, in accuracy points).
- **average rank**: for each seed, the methods are ranked by final regret (1 = lowest, ties share the
  mean rank); the ranks are averaged over the seeds each method has.
- **pairwise tests** on the per-seed final accuracy: two-sided Mann-Whitney U, or the Wilcoxon
  signed-rank test on seeds both methods have; p-values Holm-corrected over all pairs of a dataset.
- **hypervolume** (multi-objective runs): the found front is the non-dominated set of completed feasible
  trials in the search's own objectives; its members are placed in (ground-truth accuracy, params), both
  scaled to [0, 1] over the space (accuracy from worst to best, params from largest to smallest), and
  the hypervolume is taken against the reference point (0, 0), i.e. (worst accuracy, largest
  network). ``hv_ratio`` divides it by the hypervolume of the space's true front.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spaces import get_space

from ._scores import canonical_archs
from ._stats import holm, hypervolume_2d, pareto_mask
from ._trials import EVALUATED_STATES, METHOD_KEYS, RUN_KEYS

DEFAULT_CHECKPOINTS: tuple[int, ...] = (10, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
TESTS = ("mannwhitney", "wilcoxon")
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

    def true_front_hypervolume(self) -> float:
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
    """Every table the search comparison produces (see the module docstring for the definitions)."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    pairwise: pd.DataFrame
    curves: pd.DataFrame
    fronts: pd.DataFrame
    budget: dict[tuple[str, str], int]
    checkpoints: list[int]


def _regret_curve(run: pd.DataFrame, truth: SpaceTruth, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Regret after each of the first ``budget`` evaluations, and the chosen trial's position (-1: none)."""
    best_score = -math.inf
    chosen = -1
    regrets = np.empty(budget)
    picks = np.empty(budget, dtype=int)
    max_regret = truth.optimum - truth.worst
    eligible = (run["state"].to_numpy() == "COMPLETE") & run["feasible"].to_numpy(bool)
    for b, (ok, score) in enumerate(zip(eligible[:budget], run["score"].to_numpy(float)[:budget])):
        # Strictly greater: on a tie the earlier trial stays chosen.
        if ok and score > best_score:
            best_score, chosen = score, b
        picks[b] = chosen
        regrets[b] = max_regret if chosen < 0 else truth.optimum - truth.accuracy[run["arch"].iat[chosen]]
    return regrets, picks


def _found_front(run: pd.DataFrame, directions: Sequence[str]) -> pd.DataFrame:
    done = run[(run["state"] == "COMPLETE") & run["feasible"].to_numpy(bool)]
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions[:2]])
    objectives = done[["value_0", "value_1"]].to_numpy(float) * signs
    return done[pareto_mask(objectives)]


def _pairwise(per_run: pd.DataFrame, test: str) -> pd.DataFrame:
    """One row per pair of methods within a (space, dataset): the test on per-seed final accuracy, Holm-corrected."""
    rows = []
    for (space, dataset), group in per_run.groupby(["space", "dataset"], sort=True):
        methods = sorted(group.groupby(METHOD_KEYS).groups)
        block = []
        for a, b in itertools.combinations(methods, 2):
            ra = group.set_index(METHOD_KEYS).loc[[a]].set_index("seed")["chosen_acc"]
            rb = group.set_index(METHOD_KEYS).loc[[b]].set_index("seed")["chosen_acc"]
            row = {
                "space": space,
                "dataset": dataset,
                "method_a": " / ".join(a),
                "method_b": " / ".join(b),
                "n_a": len(ra),
                "n_b": len(rb),
                "median_a": float(ra.median()),
                "median_b": float(rb.median()),
                "note": "",
            }
            if test == "mannwhitney":
                result = stats.mannwhitneyu(ra.to_numpy(), rb.to_numpy(), alternative="two-sided")
                row["statistic"], row["p"] = float(result.statistic), float(result.pvalue)
            else:
                common = ra.index.intersection(rb.index)
                diff = ra.loc[common].to_numpy() - rb.loc[common].to_numpy()
                row["n_pairs"] = len(common)
                if len(common) == 0:
                    raise ValueError(f"the Wilcoxon test pairs seeds, but {a} and {b} share none")
                if np.all(diff == 0):
                    # No pair differs: the test has nothing to rank and no evidence of a difference.
                    row["statistic"], row["p"], row["note"] = 0.0, 1.0, "identical on every seed"
                else:
                    result = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
                    row["statistic"], row["p"] = float(result.statistic), float(result.pvalue)
            block.append(row)
        if block:
            adjusted = holm([r["p"] for r in block])
            for r, p in zip(block, adjusted):
                r["p_holm"] = float(p)
            rows.extend(block)
    return pd.DataFrame(rows)


def search_report(
    trials: pd.DataFrame,
    truths: dict[tuple[str, str], SpaceTruth],
    *,
    budget: int | None = None,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    test: str = "mannwhitney",
    alpha: float = 0.05,
    directions: Sequence[str] = DEFAULT_DIRECTIONS,
) -> SearchReport:
    """Compute every search table from a trials table and the ground truth of each (space, dataset)."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}. Valid choices: {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if any(c < 1 for c in checkpoints):
        raise ValueError(f"checkpoints count evaluations and must be >= 1, got {list(checkpoints)}")
    if trials.empty:
        raise ValueError("the trials table is empty")
    frame = trials[trials["state"].isin(EVALUATED_STATES)].copy()
    if "feasible" not in frame.columns:
        frame["feasible"] = True
    frame["arch"] = _canonical_by_space(frame)
    frame = frame.sort_values([*RUN_KEYS, "number"], kind="stable")
    budgets: dict[tuple[str, str], int] = {}
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
        hv_true = None
        for key, run in group.groupby(RUN_KEYS, sort=True):
            regrets, picks = _regret_curve(run, truth, b)
            last = picks[-1]
            row = dict(zip(RUN_KEYS, key))
            row.update(
                study=str(run["study"].iat[0]) if "study" in run.columns else "",
                evaluations=len(run),
                budget=b,
                completed=int((run["state"].to_numpy()[:b] == "COMPLETE").sum()),
                chosen_arch=run["arch"].iat[last] if last >= 0 else "",
                chosen_score=float(run["score"].iat[last]) if last >= 0 else math.nan,
                chosen_acc=truth.optimum - regrets[-1] if last >= 0 else math.nan,
                regret=float(regrets[-1]),
                auc=float(regrets.mean()),
            )
            for c in checkpoints:
                if c <= b:
                    row[f"regret@{c}"] = float(regrets[c - 1])
            multi = "value_1" in run.columns and run.loc[run["state"] == "COMPLETE", "value_1"].notna().any()
            if multi:
                front = _found_front(run.iloc[:b], directions)
                points = truth.normalised(front["arch"])
                hv_true = truth.true_front_hypervolume() if hv_true is None else hv_true
                row["hypervolume"] = hypervolume_2d(points, (0.0, 0.0))
                row["hv_ratio"] = row["hypervolume"] / hv_true
                for arch in front["arch"]:
                    front_rows.append(
                        {
                            **dict(zip(RUN_KEYS, key)),
                            "arch": arch,
                            "accuracy": float(truth.accuracy[arch]),
                            "params": float(truth.params[arch]),
                        }
                    )
            run_rows.append(row)
            for i, r in enumerate(regrets, start=1):
                curve_rows.append({**dict(zip(RUN_KEYS, key)), "evaluations": i, "regret": float(r)})
    per_run = pd.DataFrame(run_rows)
    per_run["rank"] = per_run.groupby(["space", "dataset", "seed"])["regret"].rank(method="average")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN hypervolume column of single-objective runs
        summary = _summarise(per_run, [c for c in checkpoints if f"regret@{c}" in per_run.columns])
    pairwise = _pairwise(per_run, test)
    if not pairwise.empty:
        pairwise["significant"] = pairwise["p_holm"] < alpha
    return SearchReport(
        runs=per_run,
        summary=summary,
        pairwise=pairwise,
        curves=pd.DataFrame(curve_rows),
        fronts=pd.DataFrame(front_rows),
        budget=budgets,
        checkpoints=[c for c in checkpoints if f"regret@{c}" in per_run.columns],
    )


def _canonical_by_space(frame: pd.DataFrame) -> pd.Series:
    out = pd.Series(index=frame.index, dtype=object)
    for space, group in frame.groupby("space", sort=False):
        out.loc[group.index] = canonical_archs(group["arch"], space).to_numpy()
    return out


def _summarise(per_run: pd.DataFrame, checkpoints: Sequence[int]) -> pd.DataFrame:
    measures = ["chosen_acc", "regret", *[f"regret@{c}" for c in checkpoints], "auc"]
    if "hypervolume" in per_run.columns:
        measures += ["hypervolume", "hv_ratio"]
    rows = []
    for key, group in per_run.groupby(["space", "dataset", *METHOD_KEYS], sort=True):
        row: dict[str, object] = dict(zip(["space", "dataset", *METHOD_KEYS], key))
        row["seeds"] = len(group)
        row["budget"] = int(group["budget"].iat[0])
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
