"""The stacked NAS-Bench-201 network: the same weights and the same features as one student at a time."""

from __future__ import annotations

import random

import pytest
import torch

from bench.data import proxy_batch
from proxies import initialise
from spaces.nb201 import is_connected
from spaces.nb201._stacked import StackedNB201, initial_parameters


def built(nb201, arch, num_classes, seed, scheme):
    torch.manual_seed(seed)
    return initialise(nb201.build(arch, num_classes), scheme).train()


@pytest.mark.parametrize("scheme", ["default", "diswot"])
@pytest.mark.parametrize("num_classes", [10, 100])
def test_initial_parameters_equal_a_seeded_build_bit_for_bit(nb201, scheme, num_classes):
    for index in (0, 1, 341, 6111, 15624):
        arch = nb201.arch_at(index)
        net = built(nb201, arch, num_classes, 17 + index, scheme)
        params = initial_parameters(arch, num_classes, 17 + index, scheme)
        weights = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        mine = [v for k, v in params.items() if k != "classifier_bias"]
        assert len(weights) == len(mine)
        for ours, theirs in zip(mine, weights):
            assert torch.equal(ours, theirs)
        assert torch.equal(params["classifier_bias"], net.classifier.bias)


def test_unknown_scheme_is_refused(nb201):
    with pytest.raises(ValueError, match="default, diswot"):
        initial_parameters(nb201.arch_at(0), 10, 0, "xavier")
    assert nb201.stacked([nb201.arch_at(0)], [0], 10, init="xavier", device=torch.device("cpu")) is None


def test_stacked_features_equal_each_students_own(nb201, data_root):
    rng = random.Random(3)
    indices = rng.sample(range(len(nb201)), 10)
    indices.append(next(i for i in range(len(nb201)) if not is_connected(nb201.arch_at(i))))
    archs = [nb201.arch_at(i) for i in indices]
    seeds = list(range(100, 100 + len(archs)))
    images = proxy_batch("cifar10", batch_size=8, seed=0, root=data_root).images
    stacked = nb201.stacked(archs, seeds, 10, init="default", device=torch.device("cpu"))
    assert isinstance(stacked, StackedNB201) and stacked.k == len(archs)
    with torch.no_grad():
        together = stacked.forward_features(images)
        for i, (arch, seed) in enumerate(zip(archs, seeds)):
            alone = built(nb201, arch, 10, seed, "default").forward_features(images)
            scale = alone.logits.abs().max()
            torch.testing.assert_close(together.logits[i], alone.logits, rtol=1e-4, atol=1e-5 * scale)
            # Float32 summation order differs between grouped and single convolutions (and with the thread
            # count); deep cells amplify it, so tolerances scale with each map's size.
            pre_pool_scale = alone.pre_pool.abs().max()
            torch.testing.assert_close(together.pre_pool[i], alone.pre_pool, rtol=1e-4, atol=2e-4 * pre_pool_scale)
            torch.testing.assert_close(together.embedding[i], alone.embedding, rtol=1e-4, atol=2e-4 * pre_pool_scale)
            for ours, theirs in zip([s[i] for s in together.stages], alone.stages):
                torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max())
            classifier = stacked.classifier_of(i)
            assert torch.equal(classifier.weight, built(nb201, arch, 10, seed, "default").classifier.weight)


def test_stacked_needs_one_parameter_set_per_student(nb201):
    with pytest.raises(ValueError, match="one parameter dict per genotype"):
        StackedNB201([nb201.arch_at(0)], [])
