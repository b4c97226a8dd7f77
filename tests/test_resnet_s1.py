"""DisWOT's ResNet space S1: enumeration, names, networks, cost, ground truth, proxies, search and correlation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from bench.cli import app
from bench.ground_truth import load_ground_truth
from bench.scoring import OK, Scorer, ScoringConfig
from bench.teachers import DEFAULT_TEACHERS, CifarResNet, load_teacher
from proxies import PROXIES, ProxyError
from spaces import get_space, list_spaces
from spaces.resnet_s1 import DEPTHS, Depths, uniform_blocks

runner = CliRunner()
GT_FILE = Path("diswot-s1") / "s1-gt-cls.txt"


@pytest.fixture(scope="module")
def s1():
    return get_space("resnet_s1")


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# --- the space ----------------------------------------------------------------------------------------


def test_registered_and_listed(s1):
    assert "resnet_s1" in list_spaces()
    result = invoke("spaces")
    assert result.exit_code == 0 and "resnet_s1" in result.stdout and "64" in result.stdout
    assert s1.num_classes == {"cifar10": 10, "cifar100": 100}
    assert tuple(s1.input_size()) == (3, 32, 32)
    assert DEFAULT_TEACHERS["resnet_s1"] == "resnet110"


def test_64_archs_in_lexicographic_order(s1):
    archs = list(s1)
    assert len(s1) == 64 and len(archs) == 64 and len(set(archs)) == 64
    names = [s1.to_str(a) for a in archs]
    assert names == sorted(names) and names[0] == "111" and names[1] == "113" and names[-1] == "777"
    for i, arch in enumerate(archs):
        assert s1.index(arch) == i and s1.arch_at(i) == arch
        assert s1.unique(arch) == s1.to_str(arch) and s1.is_connected(arch)
    assert len({s1.unique(a) for a in archs}) == 64
    with pytest.raises(ValueError, match=r"out of range 0\.\.63"):
        s1.arch_at(64)


def test_names_and_params_round_trip(s1):
    dists = s1.distributions()
    assert list(dists) == ["stage1", "stage2", "stage3"]
    for dist in dists.values():
        assert isinstance(dist, optuna.distributions.CategoricalDistribution) and dist.choices == DEPTHS
    for arch in s1:
        text = s1.to_str(arch)
        assert s1.parse(text) == arch and s1.parse(f" {text}\n") == arch
        params = s1.to_params(arch)
        assert s1.from_params(params) == arch
        assert all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in params.items())
    assert s1.parse("357") == Depths(3, 5, 7) and s1.to_params(Depths(3, 5, 7)) == {
        "stage1": 3,
        "stage2": 5,
        "stage3": 7,
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [("358", r"stage 3 of '358'.*1, 3, 5, 7.*got 8"), ("35", "three digits"), ("abc", "three digits"),
     ("", "three digits"), ("3577", "three digits"), ("057", r"stage 1 of '057'.*1, 3, 5, 7")],
)  # fmt: skip
def test_bad_names_say_what_is_wrong(s1, text, problem):
    with pytest.raises(ValueError, match=problem):
        s1.parse(text)


def test_bad_params(s1):
    with pytest.raises(ValueError, match="lack stage3"):
        s1.from_params({"stage1": 1, "stage2": 3})
    with pytest.raises(ValueError, match=r"parameter stage2 must be a block count in 1, 3, 5, 7, got 4"):
        s1.from_params({"stage1": 1, "stage2": 4, "stage3": 3})


# --- networks and cost --------------------------------------------------------------------------------


def test_333_is_resnet20(s1):
    for classes in (10, 100):
        teacher = load_teacher("resnet20", space="resnet_s1", dataset="cifar100", num_classes=classes, seed=0)
        student = s1.build(s1.parse("333"), classes)
        assert n_params(student) == n_params(teacher) == s1.cost(s1.parse("333"), classes).params
        assert list(student.state_dict()) == list(teacher.state_dict())
    assert n_params(s1.build(s1.parse("333"), 10)) == 272_474  # He et al.'s ResNet-20 (1x1 shortcuts)
    # Every uniform depth is the teacher network of that depth, module for module.
    for n in (1, 5, 7):
        depth = 6 * n + 2
        assert uniform_blocks(depth) == (n, n, n)
        uniform = CifarResNet.uniform(depth, 100)
        built = s1.build(Depths(n, n, n), 100)
        assert built.depth == uniform.depth == depth
        assert {k: v.shape for k, v in built.state_dict().items()} == {
            k: v.shape for k, v in uniform.state_dict().items()
        }


def test_network_arguments():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet.uniform(21, 10)
    with pytest.raises(ValueError, match="either depth"):
        CifarResNet(20, 10, blocks=(3, 3, 3))
    with pytest.raises(ValueError, match="3 positive integers"):
        CifarResNet(blocks=(3, 0, 3), num_classes=10)
    net = CifarResNet(blocks=(3, 5, 7), num_classes=100)
    assert [len(s) for s in net.stages] == [3, 5, 7] and net.depth == 32


@pytest.mark.parametrize("name", ["111", "137", "357", "713", "777"])
def test_cost_equals_the_counters(s1, name):
    arch = s1.parse(name)
    for classes in (10, 100):
        net = s1.build(arch, classes).eval()
        with FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, 3, 32, 32))
        cost = s1.cost(arch, classes)
        assert cost.params == n_params(net)
        assert cost.flops == counter.get_total_flops()


def test_forward_features(s1):
    net = s1.build(s1.parse("173"), 100).train()
    feats = net.forward_features(torch.randn(4, 3, 32, 32))
    assert [tuple(s.shape) for s in feats.stages] == [(4, 16, 32, 32), (4, 32, 16, 16), (4, 64, 8, 8)]
    assert feats.pre_pool.shape == (4, 64, 8, 8) and (feats.pre_pool >= 0).all()
    assert torch.allclose(feats.embedding, feats.pre_pool.mean((2, 3)), atol=1e-6)
    assert feats.logits.shape == (4, 100) and torch.allclose(feats.logits, net.classifier(feats.embedding))
    assert [len(s) for s in net.stages] == [1, 7, 3]


# --- ground truth -------------------------------------------------------------------------------------


def test_ground_truth_file(data_root, s1):
    gt = load_ground_truth("diswot-s1", space="resnet_s1", data_root=data_root)
    assert gt.datasets() == ["cifar100"] and gt.default_metric == "vanilla_acc"
    acc = gt.accuracy("cifar100")
    assert len(acc) == 64 and set(acc.index) == {s1.to_str(a) for a in s1}
    lines = (data_root / GT_FILE).read_text().split("\n")
    for line in (lines[0], lines[27], lines[63]):
        arch, value = line.split()
        assert acc[arch] == pytest.approx(float(value))
    assert gt.query("357", "cifar100") == {"vanilla_acc": pytest.approx(float(lines[27].split()[1]))}
    with pytest.raises(ValueError, match="no dataset 'cifar10'"):
        gt.accuracy("cifar10")


def test_ground_truth_errors_and_own_file(tmp_path, data_root):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none.txt")):
        load_ground_truth(f"diswot-s1:{tmp_path / 'none.txt'}", space="resnet_s1")
    with pytest.raises(FileNotFoundError, match=r"nowhere/diswot-s1/s1-gt-cls\.txt"):
        load_ground_truth("diswot-s1", space="resnet_s1", data_root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="covers space 'resnet_s1' only"):
        load_ground_truth("diswot-s1", space="nb201", data_root=data_root)
    kd = tmp_path / "kd.txt"
    kd.write_text("# accuracies after distillation\n111 61.5\n\n357 73.25\n")
    gt = load_ground_truth(f"diswot-s1:{kd}", space="resnet_s1")
    assert gt.accuracy("cifar100").to_dict() == {"111": 61.5, "357": 73.25}
    for text, problem in [("358 70\n", "358"), ("357\n", "expected '<arch> <accuracy>'"),
                          ("357 x\n", "line 1"), ("357 1\n357 2\n", "listed twice")]:  # fmt: skip
        kd.write_text(text)
        with pytest.raises(ValueError, match=problem):
            load_ground_truth(f"diswot-s1:{kd}", space="resnet_s1")


# --- proxies, search and correlation ------------------------------------------------------------------


def test_every_proxy_scores_a_student(s1, data_root):
    config = ScoringConfig(
        space="resnet_s1", dataset="cifar10", batch_size=8, teacher="resnet20", seed=0, data_root=str(data_root)
    )
    # The oracle reads the space's ground truth, which S1 has on CIFAR-100 only (its own test below).
    names = [n for n in PROXIES.names() if "image" in PROXIES.create(n).input_kinds and n != "oracle"]
    records = Scorer(config, names).score(s1.parse("111"), names)
    assert set(records) == set(names)
    for name, record in records.items():
        assert record.status == OK, f"{name}: {record.error}"
        assert math.isfinite(record.score), name
    assert records["params"].score == s1.cost(s1.parse("111"), 10).params


def test_the_oracle_reads_s1_accuracy_on_cifar100_and_refuses_cifar10(s1):
    oracle = PROXIES.create("oracle")
    truth = load_ground_truth("diswot-s1", space="resnet_s1").accuracy("cifar100")
    for arch in ("111", "357", "777"):
        assert oracle.score_architecture(s1, s1.parse(arch), dataset="cifar100", seed=3) == float(truth[arch])
    with pytest.raises(ProxyError, match="no oracle for space 'resnet_s1' on cifar10"):
        oracle.score_architecture(s1, s1.parse("111"), dataset="cifar10", seed=0)


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2", "re", "brute"])
def test_bench_run(tmp_path, sampler, s1):
    out = tmp_path / "run"
    result = invoke(
        "run", "--space", "resnet_s1", "--proxy", "params", "--sampler", sampler, "--n-trials", "4",
        "--dataset", "cifar100", "--out", out, "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv", dtype={"arch": str})
    assert len(trials) == 4 and set(trials["state"]) == {"COMPLETE"}
    assert set(trials["space"]) == {"resnet_s1"}
    truth = load_ground_truth("diswot-s1", space="resnet_s1").accuracy("cifar100")
    for row in trials.itertuples():
        arch = s1.parse(row.arch)
        assert row.index == s1.index(arch) and row.score == row.params == s1.cost(arch, 100).params
        # The trial records the space's ground truth, never shown to the sampler.
        assert row.vanilla_acc == pytest.approx(truth[row.arch])


def test_bench_correlate(tmp_path, s1, data_root):
    truth = load_ground_truth("diswot-s1", space="resnet_s1").accuracy("cifar100")
    rows = []
    for arch in s1:
        name = s1.to_str(arch)
        rows.append({"arch": name, "proxy": "oracle", "score": truth[name], "status": "ok"})
        rows.append({"arch": name, "proxy": "params", "score": s1.cost(arch, 100).params, "status": "ok"})
    path = tmp_path / "scores.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    args = ["--space", "resnet_s1", "--dataset", "cifar100", "--json", "--n-resamples", "0", "--data-root", data_root]
    for gt in (["-g", "diswot-s1"], []):  # the space's default ground truth is diswot-s1
        result = invoke("correlate", path, *gt, *args)
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["metric"] == "vanilla_acc" and payload["ground_truth"] == "diswot-s1"
        by = {p["proxy"]: p for p in payload["proxies"]}
        assert by["oracle"]["n"] == 64 and by["oracle"]["spearman"] == pytest.approx(1.0)
        assert 0 < by["params"]["spearman"] < 1


def test_s1_scores_and_its_ground_truth_agree_on_cifar100(tmp_path, data_root):
    """S1's ground truth is CIFAR-100; without CIFAR-100 images a 100-class head scores CIFAR-10's, said so."""
    assert not (data_root / "cifar100").exists()  # the shared data holds CIFAR-10 images only
    result = invoke("score", "--space", "resnet_s1", "--proxy", "params,l2_norm", "--all", "--out", tmp_path / "s1.csv")
    assert result.exit_code == 0, result.output
    assert "cifar100 images are not under the data root" in " ".join(result.stdout.split())
    made_by = json.loads((tmp_path / "s1.csv.json").read_text())
    assert made_by["dataset"] == "cifar100" and made_by["images"] == "cifar10"
    truth = data_root / "diswot-s1" / "s1-gt-cls.txt"
    for spec in ("diswot-s1", f"diswot-s1:{truth}"):
        result = invoke("correlate", tmp_path / "s1.csv", "--space", "resnet_s1", "-g", spec, "--json")
        assert result.exit_code == 0, result.output
        rows = {row["proxy"]: row for row in json.loads(result.stdout)["proxies"]}
        assert rows["params"]["n"] == 64 and rows["params"]["dataset"] == "cifar100"
