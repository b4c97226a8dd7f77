"""Search tables: trials from Optuna's real samplers over NAS-Bench-201, checked by hand with scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.analysis import holm, search_report, space_truth
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
    # Runs of one seed are paired: the signed-rank test on the per-seed regret differences, Holm over the
    # three pairs, by hand; Mann-Whitney U on request
    pairs = list(itertools.combinations(names, 2))
    diffs = [[per_seed[(a, s)] - per_seed[(b, s)] for s in SEEDS] for a, b in pairs]
    p_wilcoxon = [1.0 if not any(d) else stats.wilcoxon([x for x in d if x], method="exact").pvalue for d in diffs]
    p_mw = [
        stats.mannwhitneyu([per_seed[(a, s)] for s in SEEDS], [per_seed[(b, s)] for s in SEEDS]).pvalue
        for a, b in pairs
    ]
    mw = search_report(single, {("nb201", "cifar10"): truth}, checkpoints=(10, 20), test="mannwhitney")
    for found, p in ((report.pairwise, p_wilcoxon), (mw.pairwise, p_mw)):
        order = np.argsort(p)
        holm = np.empty(3)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (3 - rank) * p[i]))
            holm[i] = running
        got = found.set_index(["method_a", "method_b"])
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
    with pytest.raises(ValueError, match="Valid choices: wilcoxon, mannwhitney"):
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


# --- statistics that can find a difference, and say when they cannot (issue 11); what picks leave out (13) ---


def test_three_seeds_cannot_separate_anything_and_the_report_says_so(single, truth):
    report = search_report(single, {("nb201", "cifar10"): truth}, checkpoints=(10, 20))
    # 3 seeds: 2 / 2**3 = 0.25 per pair, times 3 pairs after Holm: 0.75
    design = report.design.iloc[0]
    assert design["seeds"] == 3 and design["pairs"] == 3 and design["p_floor"] == pytest.approx(0.75)
    assert not design["reachable"] and design["seeds_needed"] == 7  # 3 * 2 / 2**7 = 0.047
    assert any("3 seeds and 3 pairs" in w and "no difference can be significant at 0.05" in w for w in report.warnings)
    best = [c for c in report.summary.columns if c.startswith("best_")]
    assert best and not report.summary[best].to_numpy().any()


def paired_trials(nb201, accuracy: pd.Series, seeds: int = 10, n: int = 20) -> pd.DataFrame:
    """Runs of one seed evaluate the same architectures, as searches sharing a seed share their first trials:
    the proxy is the ground truth itself (oracle), its negative (anti) or seeded noise."""
    rows = []
    for seed in range(seeds):
        indices = np.random.default_rng(seed).choice(len(nb201), size=n, replace=False)
        archs = [nb201.to_str(nb201.arch_at(int(i))) for i in indices]
        noise = np.random.default_rng(1000 + seed).normal(size=n)
        for proxy, scores in (("oracle", accuracy[archs].to_numpy()), ("anti", -accuracy[archs].to_numpy()),
                              ("noise", noise)):  # fmt: skip
            run = {"space": "nb201", "dataset": "cifar10", "sampler": "random", "proxy": proxy, "seed": seed}
            for number, (arch, score) in enumerate(zip(archs, scores)):
                rows.append({**run, "number": number, "state": "COMPLETE", "arch": arch, "score": score})
    return pd.DataFrame(rows)


def test_bold_only_where_the_paired_test_and_the_rank_test_separate(nb201, truth):
    acc = truth.accuracy
    trials = paired_trials(nb201, acc)
    report = search_report(trials, {("nb201", "cifar10"): truth}, checkpoints=(10,))
    assert report.warnings == []
    # By hand: final regret of each run, the signed-rank test per pair, Holm over the three pairs.
    regret = {
        (proxy, seed): acc.max() - acc[run.loc[run["score"].idxmax(), "arch"]]
        for (proxy, seed), run in trials.groupby(["proxy", "seed"])
    }
    names = ["anti", "noise", "oracle"]
    seeds = range(10)
    p = {}
    for a, b in itertools.combinations(names, 2):
        d = [regret[(a, s)] - regret[(b, s)] for s in seeds]
        p[(a, b)] = stats.wilcoxon([x for x in d if x], method="exact").pvalue
    adjusted = dict(zip(p, holm(list(p.values()))))
    mean = {m: np.mean([regret[(m, s)] for s in seeds]) for m in names}
    assert min(mean, key=mean.get) == "oracle"
    separated = all(adjusted[tuple(sorted(("oracle", o)))] < 0.05 for o in ("anti", "noise"))
    assert separated, "ten paired seeds should separate the oracle"
    summary = report.summary.set_index("proxy")
    assert summary["best_regret"].to_dict() == {"anti": False, "noise": False, "oracle": True}
    assert summary["best_chosen_acc"].to_dict() == summary["best_regret"].to_dict()
    # Average ranks, Friedman by scipy and Nemenyi's critical difference from Demšar's q_0.05 = 2.343 for k = 3
    matrix = np.array([[regret[(m, s)] for m in names] for s in seeds])
    ranks = dict(zip(names, stats.rankdata(matrix, axis=1).mean(axis=0)))
    for m in names:
        assert summary.loc[m, "avg_rank"] == pytest.approx(ranks[m])
    friedman = stats.friedmanchisquare(*matrix.T)
    result = report.friedman[("nb201", "cifar10")]
    assert result.pvalue == pytest.approx(friedman.pvalue)
    cd = 2.343 * np.sqrt(3 * 4 / (6 * 10))
    assert result.critical_difference == pytest.approx(cd, abs=1e-3)
    rank_bold = friedman.pvalue < 0.05 and all(ranks[o] - ranks["oracle"] > cd for o in ("anti", "noise"))
    assert summary.loc["oracle", "best_avg_rank"] == rank_bold
    assert not summary.loc[["anti", "noise"], "best_avg_rank"].any()


def test_a_non_finite_score_is_counted_and_never_picked(single, truth):
    run = single[(single["sampler"] == "random") & (single["seed"] == 0)].copy()
    complete = run[run["state"] == "COMPLETE"]
    top = complete["score"].idxmax()
    run.loc[top, "score"] = np.nan
    report = search_report(run, {("nb201", "cifar10"): truth}, checkpoints=(10,))
    row = report.runs.iloc[0]
    assert row["completed"] == len(complete) and row["nonfinite"] == 1
    assert row["pruned"] == int((run["state"] == "PRUNED").sum())
    acc = truth.accuracy
    kept = complete.drop(index=top)
    assert row["chosen_arch"] == kept.loc[kept["score"].idxmax(), "arch"]
    assert row["regret"] == pytest.approx(acc.max() - acc[row["chosen_arch"]])
    assert report.summary.iloc[0]["nonfinite"] == 1


def test_a_non_finite_objective_never_enters_a_found_front(nb201, truth):
    trials = run_trials(nb201, "nsga2", "flops", 0, multi=True)
    complete = trials.index[trials["state"] == "COMPLETE"]
    trials.loc[complete[0], ["score", "value_0"]] = np.nan
    report = search_report(trials, {("nb201", "cifar10"): truth}, checkpoints=(10,))
    assert report.runs.iloc[0]["nonfinite"] == 1
    assert 0 < report.runs.iloc[0]["hv_ratio"] <= 1
