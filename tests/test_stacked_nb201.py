"""The stacked NAS-Bench-201 network: the same weights and the same features as one student at a time."""

from __future__ import annotations

import math
import random

import pytest
import torch

from bench.data import proxy_batch
from spaces.nb201 import is_connected
from spaces.nb201._stacked import StackedNB201
from spaces.nb201._weights import WeightLayout, build_seeded_network, draw_numbers

CPU = torch.device("cpu")


def built(nb201, arch, num_classes, seed, scheme):
    return nb201.build_seeded(arch, num_classes, seed=seed, init=scheme, device=CPU).train()


def conv_and_linear(net):
    return [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]


@pytest.mark.parametrize("scheme", ["default", "diswot"])
@pytest.mark.parametrize("num_classes", [10, 100])
def test_a_seeded_build_has_the_schemes_distribution_and_its_own_generators_numbers(nb201, scheme, num_classes):
    for index in (0, 1, 341, 6111, 15624):
        arch = nb201.arch_at(index)
        net = built(nb201, arch, num_classes, 17 + index, scheme)
        again = built(nb201, arch, num_classes, 17 + index, scheme)
        other = built(nb201, arch, num_classes, 18 + index, scheme)
        reference = nb201.build(arch, num_classes)  # PyTorch's own construction: same modules, same shapes
        assert [p.shape for p in net.parameters()] == [p.shape for p in reference.parameters()]
        for ours, twin, theirs in zip(conv_and_linear(net), conv_and_linear(again), conv_and_linear(other)):
            assert torch.equal(ours.weight, twin.weight) and not torch.equal(ours.weight, theirs.weight)
            fan_in = ours.weight[0].numel()
            if scheme == "default":  # kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
                assert ours.weight.abs().max() <= 1 / math.sqrt(fan_in)
                assert ours.weight.abs().max() > 0.9 / math.sqrt(fan_in) or ours.weight.numel() < 100
            elif ours.weight.numel() > 1000:  # N(0, 1)
                w = ours.weight.detach()
                assert abs(float(w.std()) - 1.0) < 0.1 and abs(float(w.mean())) < 0.1
        bias = net.classifier.bias
        if scheme == "diswot":
            assert not bias.any()
        else:
            assert bias.abs().max() <= 1 / math.sqrt(net.classifier.in_features) and bias.any()
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and not bn.bias.any()
            assert torch.equal(bn.running_var, torch.ones_like(bn.running_var)) and not bn.running_mean.any()


def test_each_student_draws_its_numbers_with_its_own_generator(nb201):
    """Independent of which other students share the chunk, and of the global generator."""
    layout = WeightLayout(10)
    torch.manual_seed(0)
    together = draw_numbers([5, 6, 7], layout, "default")
    torch.manual_seed(1)
    alone = draw_numbers([6], layout, "default")
    assert torch.equal(together[1], alone[0])
    expected = torch.empty(layout.size).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(alone[0], expected)


def test_a_1x1_convolution_reads_the_leading_numbers_of_its_slot(nb201):
    arch = nb201.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    net = build_seeded_network(arch, 10, 3, "default")
    layout = WeightLayout(10)
    numbers = draw_numbers([3], layout, "default")[0]
    slot = layout.slots["cell", 0, 0, 0]
    first_1x1 = net.stages[0][0].edges["0"][1].weight
    expected = numbers[slot.offset : slot.offset + 16 * 16].view(16, 16, 1, 1) / math.sqrt(16)
    assert torch.equal(first_1x1, expected)


def test_unknown_scheme_is_refused(nb201):
    with pytest.raises(ValueError, match="default, diswot"):
        draw_numbers([0], WeightLayout(10), "xavier")
    assert nb201.stacked([nb201.arch_at(0)], [0], 10, init="xavier", device=CPU) is None
    assert nb201.build_seeded(nb201.arch_at(0), 10, seed=0, init="xavier", device=CPU) is None


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


def test_stacked_needs_one_row_of_numbers_per_student(nb201):
    layout = WeightLayout(10)
    with pytest.raises(ValueError, match="one row of numbers per genotype"):
        StackedNB201([nb201.arch_at(0)], draw_numbers([0, 1], layout, "default"), layout, "default")
