"""Many NAS-Bench-201 students evaluated in one pass, each computing only the ops it uses.

K students share one input batch. Their feature maps are packed along the channel axis, ``(B, K*C, H, W)``,
so every student-specific convolution is one grouped convolution (``groups = number of students``) and
every BatchNorm, which normalises per channel, is per student by construction. On each edge the students
are grouped by the op they use there: a group gathers its students' inputs, applies its op to all of them
at once and adds the result back into its students' node sums. A student therefore costs the arithmetic of
its own network and no more, and a whole group costs a handful of kernel launches instead of one per
student.

Each student's weights are read from the numbers its own generator drew (:mod:`spaces.nb201._weights`),
the numbers a student built alone reads too. Students are always in training mode (BatchNorm on batch
statistics, affine weight 1 and bias 0 as both schemes leave them), which is how the proxies use random
networks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._genotype import EDGES, Genotype
from ._network import CELLS_PER_STAGE
from ._weights import WeightLayout

_BN_EPS = 1e-5  # nn.BatchNorm2d's default
_CONV_OPS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def packed_cell(
    x: torch.Tensor,
    k: int,
    groups: Sequence[dict[str, torch.Tensor]],
    conv: Callable[[int, str, torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """One cell of K students packed on the channel axis, ``x`` of shape (B, K*C, H, W).

    Node j sums its incoming edges. On each edge ``groups[edge]`` maps an op to the index tensor of the
    students using it; a group gathers its students' inputs, applies the op to all of them at once and adds
    the result into their node sums, in place: no group copies the whole sum. ``conv(edge, op, x, n)``
    applies a convolution op (ReLU, grouped convolution, BatchNorm) to ``n`` students' packed channels.
    """
    b, _, h, w = x.shape
    c = x.shape[1] // k
    nodes = [x.view(b, k, c, h, w)]
    for dst in (1, 2, 3):
        acc: torch.Tensor | None = None
        owned = False  # whether acc is this node's own tensor (not a view of an earlier node), so adds go in place
        for edge, (src, edge_dst) in enumerate(EDGES):
            if edge_dst != dst:
                continue
            for op, index in groups[edge].items():
                n = index.shape[0]
                whole = n == k
                inp = nodes[src] if whole else nodes[src].index_select(1, index)
                flat = inp.reshape(b, n * c, h, w)
                if op == "skip_connect":
                    out = inp
                elif op == "avg_pool_3x3":
                    out = F.avg_pool2d(flat, 3, 1, 1, count_include_pad=False).view(b, n, c, h, w)
                else:
                    out = conv(edge, op, flat, n).view(b, n, c, h, w)
                if acc is None and whole:
                    acc, owned = out, op != "skip_connect"
                    continue
                if acc is None:
                    acc, owned = x.new_zeros(b, k, c, h, w, dtype=out.dtype), True
                # Under autocast ops may return different dtypes; the sum keeps the first one's.
                out = out.to(acc.dtype)
                if owned and whole:
                    acc.add_(out)
                elif owned:
                    acc.index_add_(1, index, out)
                else:
                    acc, owned = (acc + out) if whole else acc.index_add(1, index, out), True
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


def _cell_weights(
    numbers: torch.Tensor, layout: WeightLayout, scheme: str, stage: int, edge: int, ids: torch.Tensor, kernel: int
) -> list[torch.Tensor]:
    """The grouped-convolution weight of edge ``edge`` in each cell of ``stage`` for the students ``ids``.

    One gather and one scaling for the stage's cells together: their slots lie ``6`` slots apart in every
    row, so the stage's numbers are one strided view, written cell-major so that each cell's weight is a
    contiguous ``(n * out, in, k, k)`` block.
    """
    first = layout.slots["cell", stage, 0, 0]
    size = first.numel()
    per_cell = first.out * first.inp * kernel * kernel
    block = numbers[:, first.offset : first.offset + CELLS_PER_STAGE * 6 * size]
    values = block.view(len(numbers), CELLS_PER_STAGE, 6, size)[:, :, edge, :per_cell]
    if len(ids) != len(numbers):
        values = values.index_select(0, ids)
    out = torch.empty(CELLS_PER_STAGE, len(ids), per_cell, dtype=numbers.dtype, device=numbers.device)
    if scheme == "diswot":
        out.copy_(values.transpose(0, 1))
    else:
        torch.mul(values.transpose(0, 1), layout.bound(("cell", stage, 0, edge), kernel), out=out)
    return [w.view(-1, first.inp, kernel, kernel) for w in out]


class StackedNB201:
    """K NAS-Bench-201 students with their own genotypes and weights, evaluated together."""

    def __init__(
        self,
        genotypes: Sequence[Genotype],
        numbers: torch.Tensor,
        layout: WeightLayout,
        scheme: str,
    ) -> None:
        """``numbers`` (K, layout.size) holds each student's drawn numbers (:func:`~._weights.draw_numbers`)."""
        if len(genotypes) != len(numbers) or not genotypes:
            raise ValueError("give one row of numbers per genotype, and at least one student")
        self.genotypes = list(genotypes)
        self.k = len(genotypes)
        device = numbers.device

        def stack(key: tuple) -> torch.Tensor:
            weight = layout.weight(numbers, key, scheme)  # (K, out, in, k, k)
            return weight.reshape(-1, *weight.shape[2:]).contiguous()

        self.stem = stack(("stem",))
        self.reduce = {
            (stage, part): stack(("reduce", stage, part)) for stage in (1, 2) for part in ("a", "b", "shortcut")
        }
        # Students grouped by the op on each edge; the same grouping holds in every cell. All groups' indices
        # reach the device in one copy.
        by_edge: list[dict[str, list[int]]] = []
        for edge in range(len(EDGES)):
            by_op: dict[str, list[int]] = {}
            for s, g in enumerate(self.genotypes):
                by_op.setdefault(g.op_names[edge], []).append(s)
            by_edge.append({op: ids for op, ids in by_op.items() if op != "none"})
        flat = torch.tensor([i for groups in by_edge for ids in groups.values() for i in ids]).to(device)
        pieces = iter(flat.split([len(ids) for groups in by_edge for ids in groups.values()]))
        self.groups: list[dict[str, torch.Tensor]] = [{op: next(pieces) for op in groups} for groups in by_edge]
        self.cell_weights: dict[tuple[int, int, int, str], torch.Tensor] = {}
        for edge, groups in enumerate(self.groups):
            for op, ids in groups.items():
                if op in _CONV_OPS:
                    for stage in range(3):
                        weights = _cell_weights(numbers, layout, scheme, stage, edge, ids, _CONV_OPS[op])
                        for cell, weight in enumerate(weights):
                            self.cell_weights[stage, cell, edge, op] = weight
        self.classifier = layout.weight(numbers, ("classifier",), scheme).contiguous()  # (K, classes, C)
        self.classifier_bias = layout.weight(numbers, ("classifier_bias",), scheme).contiguous()  # (K, classes)

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
