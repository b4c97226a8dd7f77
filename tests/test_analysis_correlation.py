"""Correlation tables: the tool's numbers against scipy computed by hand on real scores and ground truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.analysis import (
    BootstrapSettings,
    TruthSource,
    aggregate_runs,
    correlation_metrics,
    correlation_table,
    load_score_runs,
    load_scores,
    select_archs,
)
from bench.ground_truth import load_ground_truth

from .analysis_data import N_ARCHS, real_score_files


@pytest.fixture(scope="module")
def scores():
    return real_score_files()


@pytest.fixture(scope="module")
def csv_truth(data_root):
    return TruthSource("csv test_acc", load_ground_truth("csv", data_root=data_root), "test_acc")


def test_correlation_table_equals_scipy_by_hand(scores, csv_truth):
    settings = BootstrapSettings(n_resamples=200, seed=3)
    run = load_scores(scores[0], defaults={"dataset": "cifar10"})
    table = correlation_table([run], [csv_truth], bootstrap=settings)
    assert list(table["proxy"]) == ["params", "l2_norm"]
    truth = csv_truth.ground_truth.accuracy("cifar10", "test_acc")
    raw = pd.read_csv(scores[0])
    for proxy, row in table.set_index("proxy").iterrows():
        part = raw[(raw["proxy"] == proxy) & (raw["status"] == "ok")].sort_values("index")
        x = part["score"].to_numpy(float)
        y = truth.loc[part["arch"]].to_numpy(float)
        assert row["n"] == len(part) == N_ARCHS
        assert row["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert row["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert row["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        # top-K %: the proxy's m best (first in index order on ties) among the m truly best
        for k in (10, 5):
            m = math.ceil(N_ARCHS * k / 100)
            by_proxy = set(part.assign(t=y).nlargest(m, "score", keep="first")["arch"])
            by_truth = set(part.assign(t=y).nlargest(m, "t", keep="first")["arch"])
            assert row[f"top{k}"] == pytest.approx(len(by_proxy & by_truth) / m)
        picked = y[int(np.argmax(x))]
        assert row["best_pct"] == pytest.approx(stats.percentileofscore(y, picked, kind="weak"))
        assert row["best_truth"] == pytest.approx(picked)
        # the same paired resamples as scipy's own bootstrap of Spearman's rho alone
        ci = stats.bootstrap(
            (x, y),
            lambda a, b: stats.spearmanr(a, b).statistic,
            paired=True,
            vectorized=False,
            n_resamples=200,
            method="percentile",
            rng=np.random.default_rng(3),
        ).confidence_interval
        assert row["spearman_low"] == pytest.approx(ci.low, abs=1e-9)
        assert row["spearman_high"] == pytest.approx(ci.high, abs=1e-9)
        assert row["spearman_low"] <= row["spearman"] <= row["spearman_high"]
    # parameter count ranks NB201 cells well: a weak or negative value would mean a join or ordering bug
    assert table.set_index("proxy").loc["params", "spearman"] > 0.4


def test_failed_and_nonfinite_rows_are_counted_not_correlated(scores, csv_truth, tmp_path):
    frame = pd.read_csv(scores[0], dtype={"error": str})
    ok_params = frame.index[frame["proxy"] == "params"]
    frame.loc[ok_params[:3], ["score", "status", "error"]] = [np.nan, "failed", "RuntimeError: boom"]
    frame.loc[ok_params[3:5], ["score", "status", "error"]] = [np.nan, "nonfinite", "score was nan"]
    path = tmp_path / "with_failures.csv"
    frame.to_csv(path, index=False)
    run = load_scores(path, defaults={"dataset": "cifar10"})
    row = correlation_table([run], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0)).set_index("proxy")
    assert row.loc["params", ["n", "n_failed", "n_nonfinite"]].tolist() == [N_ARCHS - 5, 3, 2]
    assert math.isnan(row.loc["params", "spearman_low"])  # no resamples, no interval


def test_connected_only_and_unique_filters(nb201):
    archs = [nb201.to_str(nb201.arch_at(i)) for i in range(len(nb201))]
    connected = select_archs(archs, space="nb201", connected_only=True)
    assert len(connected) == len(nb201) - 341
    unique = select_archs(archs, space="nb201", unique=True)
    assert len(unique) == 6466
    # the representative of each class is its lowest index, and the order is the index order
    indices = [nb201.index(nb201.parse(a)) for a in unique]
    assert indices == sorted(indices)
    first = {}
    for i, a in enumerate(archs):
        first.setdefault(nb201.unique(nb201.parse(a)), i)
    assert set(indices) == set(first.values())


def test_several_seeds_give_mean_and_spread(scores, csv_truth):
    runs = load_score_runs(scores, defaults={"dataset": "cifar10"})
    table = correlation_table(runs, [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    summary = aggregate_runs(table).set_index("proxy")
    for proxy in ("params", "l2_norm"):
        values = table.loc[table["proxy"] == proxy, "spearman"].to_numpy()
        assert summary.loc[proxy, "runs"] == 2
        assert summary.loc[proxy, "spearman_mean"] == pytest.approx(values.mean())
        assert summary.loc[proxy, "spearman_std"] == pytest.approx(values.std(ddof=1))


def test_constant_scores_are_reported_with_a_reason(scores, csv_truth, tmp_path):
    frame = pd.read_csv(scores[0])
    frame.loc[frame["proxy"] == "l2_norm", "score"] = 1.0
    path = tmp_path / "constant.csv"
    frame.to_csv(path, index=False)
    table = correlation_table(
        [load_scores(path, defaults={"dataset": "cifar10"})], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0)
    ).set_index("proxy")
    assert math.isnan(table.loc["l2_norm", "spearman"])
    assert "same score" in table.loc["l2_norm", "note"]
    assert table.loc["params", "note"] == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": -1}, "n_resamples"),
        ({"confidence": 1.5}, "confidence"),
        ({"method": "bca"}, "Valid choices: percentile, basic, BCa"),
    ],
)
def test_bad_bootstrap_settings_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BootstrapSettings(**kwargs)


def test_too_few_architectures_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="at least 3"):
        correlation_metrics([1.0, 2.0], [3.0, 4.0])
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,score\n0,1.0\n")
    with pytest.raises(ValueError, match="lacks the column"):
        load_scores(bad)
    with pytest.raises(FileNotFoundError):
        load_scores(tmp_path / "missing.csv")
