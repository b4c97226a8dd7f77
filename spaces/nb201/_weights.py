"""Seeded initial weights of NAS-Bench-201 students, drawn on the device that scores them.

Each student draws every random number it needs in one call of its own generator, created on the
scoring device and seeded with the student's seed: one kernel launch a student, and no host work
beyond making the generator. The numbers fill a fixed layout with room for every convolution a cell
could hold (an edge's slot is sized for a 3x3 convolution; a 1x1 uses its leading values), so the
layout is the same for every genotype and a chunk of students is one ``(K, N)`` tensor. A student
built alone and a student of a stacked chunk take their weights from the same numbers, so the two
score alike.

Schemes (``proxies.INITS``):

- ``default``: PyTorch's default initialisation of ``Conv2d`` and ``Linear`` (kaiming-uniform with
  a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the classifier's bias on the same bound);
- ``diswot``: DisWOT's reference code, N(0, 1) for every convolution and the classifier, zero bias.

BatchNorm layers start at weight 1 and bias 0 in both. A generator draws different numbers on a CPU
and on a GPU, so the device type is part of every score's key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ._genotype import Genotype
from ._network import C_STEM, CELLS_PER_STAGE, NB201Network

#: The initialisation schemes these weights reproduce (see ``proxies.INITS``).
SCHEMES = ("default", "diswot")
_CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_STAGES = 3


@dataclass(frozen=True)
class Slot:
    """Room for one weight in a student's numbers: ``out x in x k x k`` values from ``offset``, k <= ``kernel``."""

    offset: int
    out: int
    inp: int
    kernel: int

    def numel(self, kernel: int | None = None) -> int:
        k = self.kernel if kernel is None else kernel
        return self.out * self.inp * k * k


class WeightLayout:
    """Where each weight of an NB201 student lies in its drawn numbers, for one classifier width.

    Keys: ``("stem",)``, ``("reduce", stage, part)`` with part ``a``, ``b`` or ``shortcut``,
    ``("cell", stage, cell, edge)``, ``("classifier",)`` and ``("classifier_bias",)``.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.slots: dict[tuple, Slot] = {}
        self.size = 0
        self._add(("stem",), C_STEM, 3, 3)
        c = C_STEM
        for stage in range(_STAGES):
            if stage > 0:
                c_in, c = c, 2 * c
                self._add(("reduce", stage, "a"), c, c_in, 3)
                self._add(("reduce", stage, "b"), c, c, 3)
                self._add(("reduce", stage, "shortcut"), c, c_in, 1)
            for cell in range(CELLS_PER_STAGE):
                for edge in range(6):
                    self._add(("cell", stage, cell, edge), c, c, 3)
        self.channels = c
        self._add(("classifier",), num_classes, c, 1)
        self._add(("classifier_bias",), num_classes, 1, 1)

    def _add(self, key: tuple, out: int, inp: int, kernel: int) -> None:
        slot = Slot(self.size, out, inp, kernel)
        self.slots[key] = slot
        self.size += slot.numel()

    def bound(self, key: tuple, kernel: int | None = None) -> float:
        """PyTorch's default bound 1/sqrt(fan_in) of the weight in ``key`` (the classifier's for its bias)."""
        slot = self.slots[key]
        if key == ("classifier_bias",):
            return 1.0 / math.sqrt(self.channels)
        k = slot.kernel if kernel is None else kernel
        return 1.0 / math.sqrt(slot.inp * k * k)

    def weight(self, numbers: torch.Tensor, key: tuple, scheme: str, kernel: int | None = None) -> torch.Tensor:
        """The weights in ``key`` of every row of ``numbers`` (K, size): shape (K, out, in, k, k).

        A 1-D ``numbers`` (one student) gives (out, in, k, k). The classifier is (K, classes, C) and its
        bias (K, classes).
        """
        slot = self.slots[key]
        k = slot.kernel if kernel is None else kernel
        values = numbers[..., slot.offset : slot.offset + slot.numel(k)]
        lead = numbers.shape[:-1]
        if key == ("classifier_bias",):
            if scheme == "diswot":
                return torch.zeros_like(values)
            return values * self.bound(key)
        shape = (slot.out, slot.inp) if key == ("classifier",) else (slot.out, slot.inp, k, k)
        values = values.reshape(*lead, *shape)
        return values if scheme == "diswot" else values * self.bound(key, k)


def draw_numbers(
    seeds: Sequence[int], layout: WeightLayout, scheme: str, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Every student's random numbers, (K, layout.size), each row from its own generator on ``device``.

    ``default`` draws U(-1, 1) (scaled by each weight's bound when read), ``diswot`` N(0, 1).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"NAS-Bench-201 students are drawn with schemes {', '.join(SCHEMES)}, not {scheme!r}")
    device = torch.device(device)
    numbers = torch.empty(len(seeds), layout.size, device=device)
    for row, seed in zip(numbers, seeds):
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
        if scheme == "default":
            row.uniform_(-1.0, 1.0, generator=generator)
        else:
            row.normal_(0.0, 1.0, generator=generator)
    return numbers


def build_seeded_network(
    genotype: Genotype, num_classes: int, seed: int, scheme: str, device: torch.device | str = "cpu"
) -> NB201Network:
    """One student, built on ``device`` with the weights :func:`draw_numbers` gives ``seed``."""
    device = torch.device(device)
    layout = WeightLayout(num_classes)
    numbers = draw_numbers([seed], layout, scheme, device)[0]
    # Modules initialise themselves as they are made; that costs less than making them on the meta device,
    # and every weight is overwritten below. The global generator they draw from is restored after.
    on_gpu = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if on_gpu else []), torch.device(device) if on_gpu else nullcontext():
        net = NB201Network(genotype, num_classes)
    with torch.no_grad():
        for key, param in _network_weights(net, genotype):
            kernel = param.shape[-1] if key[0] == "cell" else None
            param.copy_(layout.weight(numbers, key, scheme, kernel))
    return net


def _network_weights(net: NB201Network, genotype: Genotype) -> list[tuple[tuple, torch.Tensor]]:
    """(layout key, parameter) of every convolution and the classifier of ``net``."""
    weights: list[tuple[tuple, torch.Tensor]] = [(("stem",), net.stem[0].weight)]
    for stage, blocks in enumerate(net.stages):
        cells = list(blocks)
        if stage > 0:
            reduction = cells.pop(0)
            weights += [
                (("reduce", stage, "a"), reduction.conv_a[1].weight),
                (("reduce", stage, "b"), reduction.conv_b[1].weight),
                (("reduce", stage, "shortcut"), reduction.downsample[1].weight),
            ]
        for cell_index, cell in enumerate(cells):
            for edge, name in enumerate(genotype.op_names):
                if name in _CONV_KERNELS:
                    weights.append((("cell", stage, cell_index, edge), cell.edges[str(edge)][1].weight))
    weights += [(("classifier",), net.classifier.weight), (("classifier_bias",), net.classifier.bias)]
    return weights
