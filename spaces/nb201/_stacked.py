"""Many NAS-Bench-201 students evaluated in one pass, each computing only the ops it uses.

K students share one input batch. Their feature maps are packed along the channel axis, ``(B, K*C, H, W)``,
so every student-specific convolution is one grouped convolution (``groups = number of students``) and
every BatchNorm, which normalises per channel, is per student by construction. On each edge the students
are grouped by the op they use there: a group gathers its students' inputs, applies its op to all of them
at once and adds the result back into its students' node sums. A student therefore costs the arithmetic of
its own network and no more, and a whole group costs a handful of kernel launches instead of one per
student.

:func:`initial_parameters` reproduces, bit for bit, the parameters that :class:`NB201Network` gets from a
seeded construction (and an initialisation scheme), without building modules: it draws the same random
numbers in the same order. Students are always in training mode (BatchNorm on batch statistics, affine
weight 1 and bias 0 as both schemes leave them), which is how the proxies use random networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn import init

from ._genotype import EDGES, Genotype
from ._network import C_STEM, CELLS_PER_STAGE

#: The initialisation schemes :func:`initial_parameters` can reproduce (see ``proxies.INITS``).
SCHEMES = ("default", "diswot")
_BN_EPS = 1e-5  # nn.BatchNorm2d's default
_CONV_OPS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _slots(genotype: Genotype, num_classes: int) -> list[tuple[tuple, tuple[int, ...]]]:
    """(slot name, weight shape) of every convolution and the classifier, in module-construction order."""
    slots: list[tuple[tuple, tuple[int, ...]]] = [(("stem",), (C_STEM, 3, 3, 3))]
    c = C_STEM
    for stage in range(3):
        if stage > 0:
            c_in, c = c, 2 * c
            slots += [
                (("reduce", stage, "a"), (c, c_in, 3, 3)),
                (("reduce", stage, "b"), (c, c, 3, 3)),
                (("reduce", stage, "shortcut"), (c, c_in, 1, 1)),
            ]
        for cell in range(CELLS_PER_STAGE):
            for edge, name in enumerate(genotype.op_names):
                if name in _CONV_OPS:
                    k = _CONV_OPS[name]
                    slots.append((("cell", stage, cell, edge), (c, c, k, k)))
    slots.append((("classifier",), (num_classes, c)))
    return slots


def initial_parameters(genotype: Genotype, num_classes: int, seed: int, scheme: str = "default") -> dict:
    """The weights a seeded ``NB201Network(genotype, num_classes)`` starts with, keyed by slot.

    Equal to ``torch.manual_seed(seed); initialise(NB201Network(...), scheme)``: the construction draws
    each convolution's and the classifier's weights (kaiming-uniform, a = sqrt(5)) and the classifier's
    bias in module order; the ``diswot`` scheme then redraws every weight from N(0, 1), again in module
    order, and zeroes the classifier's bias.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"the stacked NAS-Bench-201 network reproduces schemes {', '.join(SCHEMES)}, not {scheme!r}")
    slots = _slots(genotype, num_classes)
    gen = torch.Generator().manual_seed(seed)
    params: dict = {}
    for name, shape in slots:
        params[name] = init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5), generator=gen)
        if name == ("classifier",):
            bound = 1 / math.sqrt(shape[1])
            params["classifier_bias"] = init.uniform_(torch.empty(shape[0]), -bound, bound, generator=gen)
    if scheme == "diswot":
        for name, _ in slots:
            params[name].normal_(0.0, 1.0, generator=gen)
        params["classifier_bias"].zero_()
    return params


def packed_cell(
    x: torch.Tensor,
    k: int,
    groups: Sequence[dict[str, torch.Tensor]],
    conv: Callable[[int, str, torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """One cell of K students packed on the channel axis, ``x`` of shape (B, K*C, H, W).

    Node j sums its incoming edges. On each edge ``groups[edge]`` maps an op to the index tensor of the
    students using it; a group gathers its students' inputs, applies the op to all of them at once and adds
    the result into their node sums. ``conv(edge, op, x, n)`` applies a convolution op (ReLU, grouped
    convolution, BatchNorm) to ``n`` students' packed channels.
    """
    b, _, h, w = x.shape
    c = x.shape[1] // k
    nodes = [x.view(b, k, c, h, w)]
    for dst in (1, 2, 3):
        acc: torch.Tensor | None = None
        for edge, (src, edge_dst) in enumerate(EDGES):
            if edge_dst != dst:
                continue
            for op, index in groups[edge].items():
                n = len(index)
                inp = nodes[src] if n == k else nodes[src].index_select(1, index)
                flat = inp.reshape(b, n * c, h, w)
                if op == "skip_connect":
                    out = inp
                elif op == "avg_pool_3x3":
                    out = F.avg_pool2d(flat, 3, 1, 1, count_include_pad=False).view(b, n, c, h, w)
                else:
                    out = conv(edge, op, flat, n).view(b, n, c, h, w)
                if n == k:
                    acc = out if acc is None else acc + out
                else:
                    # Under autocast ops may return different dtypes; index_add needs one.
                    base = x.new_zeros(b, k, c, h, w, dtype=out.dtype) if acc is None else acc
                    acc = base.index_add(1, index, out.to(base.dtype))
        # A node fed only by `none` edges is all zeros, as NAS-Bench-201's Zero op makes it.
        nodes.append(x.new_zeros(b, k, c, h, w) if acc is None else acc)
    return nodes[3].reshape(b, k * c, h, w)


@dataclass
class StackedFeatures:
    """:class:`spaces.Features` of K students, stacked on a leading student axis."""

    stages: list[torch.Tensor]  # each (K, B, C, H, W)
    pre_pool: torch.Tensor  # (K, B, C, H, W)
    embedding: torch.Tensor  # (K, B, C)
    logits: torch.Tensor  # (K, B, classes)


def _batch_norm(x: torch.Tensor) -> torch.Tensor:
    # Affine weight 1 and bias 0 leave the normalised values unchanged, bit for bit.
    return F.batch_norm(x, None, None, training=True, eps=_BN_EPS)


class StackedNB201:
    """K NAS-Bench-201 students with their own genotypes and weights, evaluated together."""

    def __init__(self, genotypes: Sequence[Genotype], params: Sequence[dict], *, device: torch.device | str = "cpu"):
        if len(genotypes) != len(params) or not genotypes:
            raise ValueError("give one parameter dict per genotype, and at least one student")
        self.genotypes = list(genotypes)
        self.k = len(genotypes)
        device = torch.device(device)

        def stack(slot: tuple, students: Sequence[int]) -> torch.Tensor:
            return torch.cat([params[s][slot] for s in students]).to(device, non_blocking=True)

        everyone = range(self.k)
        self.stem = stack(("stem",), everyone)
        self.reduce = {
            (stage, part): stack(("reduce", stage, part), everyone)
            for stage in (1, 2)
            for part in ("a", "b", "shortcut")
        }
        # Students grouped by the op on each edge; the same grouping holds in every cell.
        self.groups: list[dict[str, torch.Tensor]] = []
        for edge in range(len(EDGES)):
            by_op: dict[str, list[int]] = {}
            for s, g in enumerate(self.genotypes):
                by_op.setdefault(g.op_names[edge], []).append(s)
            self.groups.append({op: torch.tensor(ids, device=device) for op, ids in by_op.items() if op != "none"})
        self.cell_weights: dict[tuple[int, int, int, str], torch.Tensor] = {}
        for edge, groups in enumerate(self.groups):
            for op, ids in groups.items():
                if op in _CONV_OPS:
                    members = ids.tolist()
                    for stage in range(3):
                        for cell in range(CELLS_PER_STAGE):
                            self.cell_weights[stage, cell, edge, op] = stack(("cell", stage, cell, edge), members)
        self.classifier = torch.stack([p[("classifier",)] for p in params]).to(device)  # (K, classes, C)
        self.classifier_bias = torch.stack([p["classifier_bias"] for p in params]).to(device)  # (K, classes)

    def classifier_of(self, student: int) -> torch.nn.Linear:
        """Student ``student``'s classifier as a layer (its weights are views of the stacked ones)."""
        weight = self.classifier[student]
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], device="meta")
        layer.weight = torch.nn.Parameter(weight.clone(), requires_grad=True)
        layer.bias = torch.nn.Parameter(self.classifier_bias[student].clone(), requires_grad=True)
        return layer

    def _cell(self, x: torch.Tensor, stage: int, cell: int) -> torch.Tensor:
        def conv(edge: int, op: str, flat: torch.Tensor, n: int) -> torch.Tensor:
            weight = self.cell_weights[stage, cell, edge, op]
            return _batch_norm(F.conv2d(F.relu(flat), weight, padding=weight.shape[-1] // 2, groups=n))

        return packed_cell(x, self.k, self.groups, conv)

    def _reduction(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        k = self.k
        a = _batch_norm(F.conv2d(F.relu(x), self.reduce[stage, "a"], stride=2, padding=1, groups=k))
        a = _batch_norm(F.conv2d(F.relu(a), self.reduce[stage, "b"], padding=1, groups=k))
        shortcut = F.conv2d(F.avg_pool2d(x, 2, 2), self.reduce[stage, "shortcut"], groups=k)
        return shortcut + a

    def forward_features(self, images: torch.Tensor) -> StackedFeatures:
        """Features of every student on the same ``images`` (B, 3, H, W)."""
        b = images.shape[0]
        k = self.k
        x = _batch_norm(F.conv2d(images, self.stem, padding=1))
        stages = []
        for stage in range(3):
            if stage > 0:
                x = self._reduction(x, stage)
            for cell in range(CELLS_PER_STAGE):
                x = self._cell(x, stage, cell)
            stages.append(x)
        pre_pool = F.relu(_batch_norm(x))

        def per_student(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, k, -1, *t.shape[2:]).transpose(0, 1)

        embedding = per_student(pre_pool.mean(dim=(2, 3)))
        logits = torch.baddbmm(self.classifier_bias.unsqueeze(1), embedding, self.classifier.transpose(1, 2))
        return StackedFeatures(
            stages=[per_student(s) for s in stages],
            pre_pool=per_student(pre_pool),
            embedding=embedding,
            logits=logits,
        )
