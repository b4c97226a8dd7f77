"""The distillation result table: under a parameter budget, which student each selector picks, and how it
does trained vanilla and distilled (from a ``kd-bench`` table), over seeds.

Selectors: every proxy in the score files (its best-scoring candidate), the best architecture by the
space's vanilla benchmark accuracy (what one would pick without a proxy), a seeded random pick, and, as
bounds, the best candidate by the trained vanilla and KD accuracies themselves. Candidates are the students
the ``kd-bench`` table has both accuracies for, within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..analysis import Column, Provenance, ScoreRun, Table
from ..analysis._scores import canonical_archs
from ..ground_truth import GroundTruth

RANDOM = "random"
BENCHMARK = "best vanilla (benchmark)"
ORACLE_VANILLA = "best vanilla (trained, bound)"
ORACLE_KD = "best KD (trained, bound)"


def candidates(kd: GroundTruth, dataset: str, *, max_params: float | None, costs: pd.DataFrame) -> pd.DataFrame:
    """The students with both accuracies, within ``max_params``, with their params and FLOPs."""
    table = kd.table(dataset).dropna(subset=["kd_acc", "vanilla_acc"]).join(costs, how="inner")
    if max_params is not None:
        table = table[table["params"] <= max_params]
    if table.empty:
        raise ValueError(
            f"no trained student of {kd.name} fits the budget of {max_params:,.0f} parameters"
            if max_params is not None
            else f"{kd.name} has no student with both vanilla and KD accuracy for {dataset}"
        )
    return table


def _pick(pool: pd.DataFrame, values: pd.Series) -> str | None:
    values = values.reindex(pool.index).dropna()
    # Ties go to the first candidate in the pool's order, so a pick never depends on hash order.
    return None if values.empty else str(values.idxmax())


def selections(
    runs: Sequence[ScoreRun],
    pool: pd.DataFrame,
    *,
    space: str,
    benchmark: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per (seed, selector): the chosen architecture and its numbers."""
    rows = []
    for run in runs:
        seed = int(run.meta.get("seed", 0))
        frame = run.frame[run.frame["status"] == "ok"].assign(arch=lambda f: canonical_archs(f["arch"], space))
        picks: dict[str, str | None] = {}
        for proxy, group in frame.groupby("proxy", sort=False):
            picks[str(proxy)] = _pick(pool, group.set_index("arch")["score"].astype(float))
        if benchmark is not None:
            picks[BENCHMARK] = _pick(pool, benchmark)
        picks[RANDOM] = str(pool.index[np.random.default_rng(seed).integers(len(pool))])
        picks[ORACLE_VANILLA] = _pick(pool, pool["vanilla_acc"])
        picks[ORACLE_KD] = _pick(pool, pool["kd_acc"])
        for selector, arch in picks.items():
            if arch is None:
                continue
            row = pool.loc[arch]
            rows.append(
                {
                    "seed": seed,
                    "selector": selector,
                    "arch": arch,
                    "params": row["params"] / 1e6,
                    "flops": row["flops"] / 1e6,
                    "vanilla_acc": row["vanilla_acc"],
                    "kd_acc": row["kd_acc"],
                    "gain": row["kd_acc"] - row["vanilla_acc"],
                }
            )
    if not rows:
        raise ValueError("no selector picked a student: do the score files score any trained student?")
    return pd.DataFrame(rows)


def left_out(runs: Sequence[ScoreRun], pool: pd.DataFrame, *, space: str) -> list[str]:
    """One line per (score file, proxy) that picks no student, saying why: the selections leave it out."""
    lines = []
    for run in runs:
        frame = run.frame.assign(arch=lambda f: canonical_archs(f["arch"], space))
        for proxy, group in frame.groupby("proxy", sort=False):
            in_pool = group[group["arch"].isin(pool.index)]
            usable = in_pool[in_pool["status"] == "ok"]["score"].astype(float)
            if usable.notna().any():
                continue
            counts = in_pool["status"].value_counts()
            why = ", ".join(f"{n} {status}" for status, n in counts.items()) or "none scored"
            lines.append(
                f"{proxy} ({run.label}): no usable score on the {len(pool)} candidate student(s) ({why}); no pick"
            )
    return lines


def summarise(picks: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per selector, in first-seen order; how many distinct picks."""
    metrics = ["params", "flops", "vanilla_acc", "kd_acc", "gain"]
    grouped = picks.groupby("selector", sort=False)
    summary = grouped[metrics].mean()
    spread = grouped[metrics].std(ddof=1).fillna(0.0).add_suffix("_std")
    distinct = grouped["arch"].nunique().rename("distinct")
    shown = "student" if "student" in picks.columns else "arch"
    example = grouped[shown].agg(lambda a: a.value_counts().index[0]).rename("arch")
    seeds = grouped["seed"].nunique().rename("seeds")
    return pd.concat([summary, spread, distinct, example, seeds], axis=1).reset_index()


def distillation_table(
    summary: pd.DataFrame, *, provenance: Provenance, dataset: str, budget: float | None, source: str
) -> Table:
    budget_text = f"at most {budget / 1e6:.2f} M parameters" if budget is not None else "no parameter budget"
    columns = [
        Column("selector", "selector", kind="text"),
        Column("arch", "most chosen student", kind="text"),
        Column("distinct", "distinct", kind="int"),
        Column("params", "params (M)", digits=3, spread="params_std"),
        Column("flops", "FLOPs (M)", digits=1, spread="flops_std"),
        Column("vanilla_acc", "vanilla acc (%)", digits=2, spread="vanilla_acc_std", best="max"),
        Column("kd_acc", "KD acc (%)", digits=2, spread="kd_acc_std", best="max"),
        Column("gain", "gain (pp)", digits=2, spread="gain_std", best="max"),
    ]
    seeds = int(summary["seeds"].max())
    return Table(
        name="distillation",
        frame=summary,
        columns=columns,
        caption=(
            f"Students chosen under {budget_text} on {dataset}, trained vanilla and distilled ({source}); "
            f"mean ± std over {seeds} seed(s). Bounds pick by the trained accuracies themselves."
        ),
        label="tab:distillation",
        provenance=provenance,
    )
