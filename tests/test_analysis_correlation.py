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
    left_out,
    load_score_runs,
    load_scores,
    pair_runs,
    select_archs,
)
from bench.ground_truth import load_ground_truth
from spaces import get_space

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
    assert list(zip(table["cells"], table["proxy"])) == [
        ("all", "params"), ("all", "l2_norm"), ("valid", "params"), ("valid", "l2_norm")
    ]  # fmt: skip
    truth = csv_truth.ground_truth.accuracy("cifar10", "test_acc")
    raw = pd.read_csv(scores[0])
    for proxy, row in table[table["cells"] == "all"].set_index("proxy").iterrows():
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
    assert table[table["cells"] == "all"].set_index("proxy").loc["params", "spearman"] > 0.4


def test_failed_and_nonfinite_rows_are_counted_not_correlated(scores, csv_truth, tmp_path):
    frame = pd.read_csv(scores[0], dtype={"error": str})
    ok_params = frame.index[frame["proxy"] == "params"]
    frame.loc[ok_params[:3], ["score", "status", "error"]] = [np.nan, "failed", "RuntimeError: boom"]
    frame.loc[ok_params[3:5], ["score", "status", "error"]] = [np.nan, "nonfinite", "score was nan"]
    path = tmp_path / "with_failures.csv"
    frame.to_csv(path, index=False)
    run = load_scores(path, defaults={"dataset": "cifar10"})
    table = correlation_table([run], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    row = table[table["cells"] == "all"].set_index("proxy")
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
    table = table[table["cells"] == "valid"]
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
    )
    table = table[table["cells"] == "all"].set_index("proxy")
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


# --- seeds paired by architecture, all and valid cells, duplicates and non-finite scores (issues 11 and 13) ---


def _by_hand(frame: pd.DataFrame, proxy: str, archs, truth: pd.Series) -> float:
    part = frame[(frame["proxy"] == proxy) & frame["arch"].isin(archs) & (frame["status"] == "ok")]
    return stats.spearmanr(part["score"].to_numpy(float), truth.loc[part["arch"]].to_numpy(float)).statistic


def test_seed_files_are_paired_by_architecture_and_a_partial_overlap_is_stated(scores, csv_truth, tmp_path):
    seed0 = pd.read_csv(scores[0])
    # The second seed's file: rows in another order, five of the first file's architectures missing and three
    # that the first file does not have.
    seed1 = pd.read_csv(scores[1]).sample(frac=1.0, random_state=0)
    dropped = sorted(seed0["arch"].unique())[:5]
    extra = pd.read_csv(scores[0]).iloc[:0]
    nb201 = get_space("nb201")
    others = [
        nb201.to_str(nb201.arch_at(i)) for i in (7, 70, 700) if nb201.to_str(nb201.arch_at(i)) not in set(seed0["arch"])
    ]
    extra = pd.DataFrame(
        [{"index": 0, "arch": a, "proxy": p, "score": 1.0 + k, "seconds": 0.0, "status": "ok", "error": ""}
         for k, a in enumerate(others) for p in ("params", "l2_norm")]
    )  # fmt: skip
    seed1 = pd.concat([seed1[~seed1["arch"].isin(dropped)], extra], ignore_index=True)
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    seed0.to_csv(paths[0], index=False)
    seed1.to_csv(paths[1], index=False)
    runs = load_score_runs(paths, defaults={"dataset": "cifar10"})
    pairing = pair_runs(runs)
    common = sorted(set(seed0["arch"]) - set(dropped))
    assert sorted(pairing.common) == common and len(common) == N_ARCHS - 5
    assert pairing.per_file == {"a": N_ARCHS, "b": N_ARCHS - 5 + len(others)}
    assert not pairing.full
    assert f"only the {N_ARCHS - 5} common to all are compared" in pairing.warning()
    table = correlation_table(runs, [csv_truth], bootstrap=BootstrapSettings(n_resamples=0), pairing=pairing)
    truth = csv_truth.ground_truth.accuracy("cifar10", "test_acc")
    for row in table[table["cells"] == "all"].itertuples():
        frame = seed0 if row.run == "a" else seed1
        assert row.n == len(common)
        assert row.spearman == pytest.approx(_by_hand(frame, row.proxy, common, truth), abs=1e-12)
    # Rows in another order but the same architectures: the same table as the file itself.
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(scores[1]).sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    both = load_score_runs([scores[1], shuffled], defaults={"dataset": "cifar10"})
    assert pair_runs(both).full and pair_runs(both).warning() is None
    again = correlation_table(both, [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    first, second = (again[again["run"] == r].drop(columns="run").reset_index(drop=True) for r in again["run"].unique())
    pd.testing.assert_frame_equal(first, second)


def test_files_with_no_common_architecture_are_refused(scores, tmp_path):
    frame = pd.read_csv(scores[0])
    half = sorted(frame["arch"].unique())
    frame[frame["arch"].isin(half[:20])].to_csv(tmp_path / "a.csv", index=False)
    frame[frame["arch"].isin(half[20:])].to_csv(tmp_path / "b.csv", index=False)
    runs = load_score_runs([tmp_path / "a.csv", tmp_path / "b.csv"], defaults={"dataset": "cifar10"})
    with pytest.raises(ValueError, match="no architecture in common"):
        pair_runs(runs)


def test_all_and_valid_cells_each_with_their_n(scores, csv_truth, nb201):
    run = load_scores(scores[0], defaults={"dataset": "cifar10"})
    table = correlation_table([run], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    raw = pd.read_csv(scores[0])
    archs = sorted(raw["arch"].unique())
    valid = [a for a in archs if nb201.is_connected(nb201.parse(a))]
    assert len(archs) > len(valid), "the sample should hold a disconnected cell"
    truth = csv_truth.ground_truth.accuracy("cifar10", "test_acc")
    for cells, members in (("all", archs), ("valid", valid)):
        rows = table[table["cells"] == cells].set_index("proxy")
        for proxy in ("params", "l2_norm"):
            assert rows.loc[proxy, "n"] == len(members)
            assert rows.loc[proxy, "spearman"] == pytest.approx(_by_hand(raw, proxy, members, truth), abs=1e-12)
    # --connected-only keeps only the valid view
    only = correlation_table([run], [csv_truth], connected_only=True, bootstrap=BootstrapSettings(n_resamples=0))
    assert set(only["cells"]) == {"valid"} and (only["n"] == len(valid)).all()


def test_conflicting_duplicate_rows_are_refused_by_name(scores, tmp_path):
    frame = pd.read_csv(scores[0])
    row = frame[frame["proxy"] == "l2_norm"].iloc[[3]]
    conflict = pd.concat([frame, row.assign(score=row["score"] + 1.0)], ignore_index=True)
    conflict.to_csv(tmp_path / "conflict.csv", index=False)
    with pytest.raises(ValueError, match=r"conflicting rows for proxy 'l2_norm' on architecture \|") as err:
        load_scores(tmp_path / "conflict.csv", defaults={"dataset": "cifar10"})
    assert row["arch"].iat[0] in str(err.value)
    # A failed row and an ok row of one pair also conflict: which one holds is not the analysis's to guess.
    failed = pd.concat([frame, row.assign(score=np.nan, status="failed", error="boom")], ignore_index=True)
    failed.to_csv(tmp_path / "failed.csv", index=False)
    with pytest.raises(ValueError, match="conflicting rows"):
        load_scores(tmp_path / "failed.csv", defaults={"dataset": "cifar10"})


def test_identical_duplicate_rows_are_kept_once_and_counted(scores, csv_truth, tmp_path):
    frame = pd.read_csv(scores[0])
    repeated = pd.concat([frame, frame[frame["proxy"] == "params"].iloc[:4]], ignore_index=True)
    repeated.to_csv(tmp_path / "repeated.csv", index=False)
    run = load_scores(tmp_path / "repeated.csv", defaults={"dataset": "cifar10"})
    assert run.duplicates == {"params": 4}
    table = correlation_table([run], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    plain = correlation_table(
        [load_scores(scores[0], defaults={"dataset": "cifar10"})],
        [csv_truth],
        bootstrap=BootstrapSettings(n_resamples=0),
    )
    params = table[table["proxy"] == "params"]
    assert (params["n"] == plain[plain["proxy"] == "params"]["n"].to_numpy()).all()
    assert (params["n_duplicates"] == 4).all()
    assert params["spearman"].to_numpy() == pytest.approx(plain[plain["proxy"] == "params"]["spearman"].to_numpy())


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", ""])
def test_a_non_finite_score_is_counted_and_left_out_not_the_proxy(scores, csv_truth, tmp_path, bad):
    frame = pd.read_csv(scores[0], dtype={"score": str, "error": str})
    target = frame.index[frame["proxy"] == "l2_norm"][2]
    frame.loc[target, "score"] = bad  # status stays "ok": the score itself is not finite
    path = tmp_path / "nonfinite.csv"
    frame.to_csv(path, index=False)
    run = load_scores(path, defaults={"dataset": "cifar10"})
    table = correlation_table([run], [csv_truth], bootstrap=BootstrapSettings(n_resamples=0))
    row = table[table["cells"] == "all"].set_index("proxy").loc["l2_norm"]
    assert row["n"] == N_ARCHS - 1 and row["n_nonfinite"] == 1 and row["note"] == ""
    raw = pd.read_csv(scores[0])
    kept = [a for a in raw["arch"].unique() if a != frame.loc[target, "arch"]]
    truth = csv_truth.ground_truth.accuracy("cifar10", "test_acc")
    assert row["spearman"] == pytest.approx(_by_hand(raw, "l2_norm", kept, truth), abs=1e-12)
    assert left_out(table) == ["l2_norm: 1 non-finite (NaN or inf)"]


def test_header_only_and_damaged_score_files_say_what_is_wrong(scores, tmp_path):
    header = tmp_path / "header.csv"
    header.write_text(pd.read_csv(scores[0]).iloc[:0].to_csv(index=False))
    with pytest.raises(ValueError, match="has a header but no rows"):
        load_scores(header)
    frame = pd.read_csv(scores[0], dtype={"score": str})
    frame.loc[5, "score"] = "fast"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ValueError, match=r"not a number for proxy .* 'fast'"):
        load_scores(tmp_path / "text.csv")
