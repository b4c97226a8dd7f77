"""Search tables: trials from Optuna's real samplers over NAS-Bench-201, checked by hand with scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.analysis import search_report, space_truth
from bench.ground_truth import load_ground_truth

from .analysis_data import N_TRIALS, SEEDS, run_trials


@pytest.fixture(scope="module")
def truth(data_root):
    accuracy = load_ground_truth("csv", data_root=data_root).accuracy("cifar10", "test_acc")
    return space_truth(accuracy, space="nb201", dataset="cifar10")


@pytest.fixture(scope="module")
def single(nb201):
    frames = [run_trials(nb201, s, "flops", seed) for s in ("random", "tpe", "nsga2") for seed in SEEDS]
    return pd.concat(frames, ignore_index=True)


def hand_regret(run: pd.DataFrame, b: int, acc: pd.Series) -> float:
    """Regret after b evaluations, straight from the definition."""
    seen = run.sort_values("number").iloc[:b]
    done = seen[seen["state"] == "COMPLETE"]
    if done.empty:
        return acc.max() - acc.min()
    return acc.max() - acc[done.loc[done["score"].idxmax(), "arch"]]


def test_search_table_equals_the_definitions_by_hand(single, truth):
    report = search_report(single, {("nb201", "cifar10"): truth}, checkpoints=(10, 20))
    acc = truth.accuracy
    assert report.budget == {("nb201", "cifar10"): N_TRIALS}
    per_seed = {}
    for (sampler, seed), run in single.groupby(["sampler", "seed"]):
        regrets = [hand_regret(run, b, acc) for b in range(1, N_TRIALS + 1)]
        got = report.runs.set_index(["sampler", "seed"]).loc[(sampler, seed)]
        assert got["regret"] == pytest.approx(regrets[-1])
        assert got["chosen_acc"] == pytest.approx(acc.max() - regrets[-1])
        assert got["regret@10"] == pytest.approx(regrets[9])
        assert got["regret@20"] == pytest.approx(regrets[19])
        assert got["auc"] == pytest.approx(np.mean(regrets))
        per_seed[(sampler, seed)] = regrets[-1]
    summary = report.summary.set_index("sampler")
    for sampler in ("random", "tpe", "nsga2"):
        finals = np.array([acc.max() - per_seed[(sampler, s)] for s in SEEDS])
        assert summary.loc[sampler, "chosen_acc_mean"] == pytest.approx(finals.mean())
        assert summary.loc[sampler, "chosen_acc_std"] == pytest.approx(finals.std(ddof=1))
        assert summary.loc[sampler, "regret_mean"] == pytest.approx(acc.max() - finals.mean())
    # average rank: rank the samplers by final regret within each seed, then average
    names = ["nsga2", "random", "tpe"]
    ranks = np.array([stats.rankdata([per_seed[(n, s)] for n in names]) for s in SEEDS]).mean(axis=0)
    for name, rank in zip(names, ranks, strict=True):
        assert summary.loc[name, "avg_rank"] == pytest.approx(rank)
    # Mann-Whitney U per pair, Holm over the three pairs, by hand
    pairs = list(itertools.combinations(names, 2))
    p = [
        stats.mannwhitneyu(
            [acc.max() - per_seed[(a, s)] for s in SEEDS], [acc.max() - per_seed[(b, s)] for s in SEEDS]
        ).pvalue
        for a, b in pairs
    ]
    order = np.argsort(p)
    holm = np.empty(3)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[i]))
        holm[i] = running
    got = report.pairwise.set_index(["method_a", "method_b"])
    for (a, b), p_raw, p_adj in zip(pairs, p, holm, strict=True):
        row = got.loc[(f"{a} / flops", f"{b} / flops")]
        assert row["p"] == pytest.approx(p_raw)
        assert row["p_holm"] == pytest.approx(p_adj)
        assert row["significant"] == (p_adj < 0.05)


def test_pruned_trials_spend_the_budget_but_are_never_chosen(single, truth):
    report = search_report(single, {("nb201", "cifar10"): truth}, checkpoints=(10,))
    pruned = single[single["state"] == "PRUNED"]
    assert not pruned.empty, "the sample should include disconnected cells"
    assert not set(report.runs["chosen_arch"]) & set(pruned["arch"])
    assert (report.runs["evaluations"] == N_TRIALS).all()


def test_wilcoxon_pairs_seeds_and_budget_limits(single, truth):
    truths = {("nb201", "cifar10"): truth}
    report = search_report(single, truths, test="wilcoxon", budget=20, checkpoints=(10,))
    assert (report.runs["budget"] == 20).all()
    assert (report.pairwise["n_pairs"] == len(SEEDS)).all()
    with pytest.raises(ValueError, match="exceeds the evaluations"):
        search_report(single, truths, budget=N_TRIALS + 1)
    with pytest.raises(ValueError, match="Valid choices: mannwhitney, wilcoxon"):
        search_report(single, truths, test="ttest")
    with pytest.raises(ValueError, match="no ground truth"):
        search_report(single, {})


def test_hypervolume_of_multi_objective_runs_by_hand(nb201, truth):
    trials = pd.concat([run_trials(nb201, "nsga2", "flops", s, multi=True) for s in SEEDS], ignore_index=True)
    report = search_report(trials, {("nb201", "cifar10"): truth}, checkpoints=(10,))
    acc, params = truth.accuracy, truth.params
    for seed, run in trials.groupby("seed"):
        done = run[run["state"] == "COMPLETE"]
        # the found front in the search's objectives (FLOPs up, params down), by pairwise dominance
        v = done[["value_0", "value_1"]].to_numpy() * [1, -1]
        on_front = [not any((w >= u).all() and (w > u).any() for w in v) for u in v]
        members = done[on_front]["arch"]
        x = ((acc[members] - acc.min()) / (acc.max() - acc.min())).to_numpy()
        y = ((params.max() - params[members]) / (params.max() - params.min())).to_numpy()
        # hypervolume as the integral over x of the best y reachable at or beyond x
        cuts = np.concatenate([[0.0], np.sort(x)])
        hv = sum((cuts[i + 1] - cuts[i]) * y[x >= cuts[i + 1]].max() for i in range(len(cuts) - 1))
        got = report.runs.set_index("seed").loc[seed]
        assert got["hypervolume"] == pytest.approx(hv)
        assert 0 < got["hv_ratio"] <= 1
        # the chosen architecture is the front member with the best score
        assert got["chosen_score"] == pytest.approx(done["score"].max())
    assert report.fronts["seed"].nunique() == len(SEEDS)
    assert not math.isnan(report.summary["hypervolume_mean"].iloc[0])
