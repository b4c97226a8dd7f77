"""Many NAS-Bench-201 students *trained* together: one module whose parameters are theirs, packed.

The layout is :mod:`._stacked`'s (students side by side on the channel axis, every convolution grouped,
students grouped by op on each edge), with trainable parameters and real BatchNorm layers. A BatchNorm over
the packed channels normalises each channel alone, so it is each student's own BatchNorm, running statistics
included. The students' parameters are disjoint slices of the packed ones, so the gradient of a sum of
per-student losses is each student's own gradient, and any element-wise optimiser (SGD with momentum and
weight decay) takes the very steps it would take for each student alone, on the same batches.

On a GPU this turns K students' kernel launches into one student's: the training loop of a small cell is
bound by launches, not arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spaces._features import Features

from ._genotype import EDGES
from ._network import CELLS_PER_STAGE, NB201Network
from ._stacked import packed_cell

_CONV_OPS = ("nor_conv_1x1", "nor_conv_3x3")


def _bn_like(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    first = bns[0]
    return nn.BatchNorm2d(sum(b.num_features for b in bns), eps=first.eps, momentum=first.momentum)


class PackedNB201(nn.Module):
    """K :class:`NB201Network` students as one trainable module; :meth:`unpack` writes the weights back."""

    def __init__(self, students: Sequence[NB201Network]) -> None:
        super().__init__()
        if not students:
            raise ValueError("pack at least one student")
        self.students = list(students)  # a plain list: the students' own modules are not parameters here
        self.k = len(students)
        classes = {s.classifier.out_features for s in students}
        if len(classes) != 1:
            raise ValueError(f"packed students share one dataset; got classifier widths {sorted(classes)}")
        self.num_classes = classes.pop()
        self.weights = nn.ParameterDict()
        self.norms = nn.ModuleDict()
        self.groups: list[dict[str, list[int]]] = []
        for edge in range(len(EDGES)):
            by_op: dict[str, list[int]] = {}
            for s, student in enumerate(students):
                by_op.setdefault(student.genotype.op_names[edge], []).append(s)
            self.groups.append({op: ids for op, ids in by_op.items() if op != "none"})
        # Which students use each op on each edge: buffers, so they move with the module.
        for edge, groups in enumerate(self.groups):
            for op, ids in groups.items():
                self.register_buffer(f"index_{edge}_{op}", torch.tensor(ids), persistent=False)
        for name, weights, norms in self._bindings():
            if weights:
                self.weights[name] = nn.Parameter(torch.cat([w.detach() for w in weights]).clone())
            if norms:
                self.norms[name] = _bn_like(norms)
        self.classifier_weight = nn.Parameter(torch.cat([s.classifier.weight.detach() for s in students]).clone())
        self.classifier_bias = nn.Parameter(torch.cat([s.classifier.bias.detach() for s in students]).clone())
        self._copy(to_packed=True)

    # --- the correspondence between packed and per-student tensors ------------------------------------

    def _bindings(self) -> Iterator[tuple[str, list[torch.Tensor], list[nn.BatchNorm2d]]]:
        """(name, each member's conv weight, each member's BatchNorm or []) for every packed layer."""
        nets = self.students

        def members(ids) -> list[NB201Network]:
            return [nets[i] for i in ids]

        yield "stem", [n.stem[0].weight for n in nets], [n.stem[1] for n in nets]
        for stage in range(3):
            blocks = [n.stages[stage] for n in nets]
            offset = 0
            if stage > 0:
                offset = 1
                red = [b[0] for b in blocks]
                yield f"s{stage}_a", [r.conv_a[1].weight for r in red], [r.conv_a[2] for r in red]
                yield f"s{stage}_b", [r.conv_b[1].weight for r in red], [r.conv_b[2] for r in red]
                yield f"s{stage}_shortcut", [r.downsample[1].weight for r in red], []
            for cell in range(CELLS_PER_STAGE):
                for edge, groups in enumerate(self.groups):
                    for op, ids in groups.items():
                        if op in _CONV_OPS:
                            ops = [n.stages[stage][offset + cell].edges[str(edge)] for n in members(ids)]
                            yield f"s{stage}_c{cell}_e{edge}_{op}", [o[1].weight for o in ops], [o[2] for o in ops]
        yield "lastact", [], [n.lastact[0] for n in nets]

    @torch.no_grad()
    def _copy(self, *, to_packed: bool) -> None:
        for name, weights, norms in self._bindings():
            if weights:
                self._move(self.weights[name], weights, to_packed)
            if norms:
                packed = self.norms[name]
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    self._move(getattr(packed, attr), [getattr(b, attr) for b in norms], to_packed)
                if to_packed:
                    packed.num_batches_tracked.copy_(norms[0].num_batches_tracked)
                else:
                    for b in norms:
                        b.num_batches_tracked.copy_(packed.num_batches_tracked)
        self._move(self.classifier_weight, [s.classifier.weight for s in self.students], to_packed)
        self._move(self.classifier_bias, [s.classifier.bias for s in self.students], to_packed)

    @staticmethod
    def _move(packed: torch.Tensor, parts: list[torch.Tensor], to_packed: bool) -> None:
        if to_packed:
            packed.copy_(torch.cat([p.to(packed.device) for p in parts]))
        else:
            for part, piece in zip(parts, packed.split([p.shape[0] for p in parts])):
                part.copy_(piece)

    def unpack(self) -> list[NB201Network]:
        """The students, their weights and BatchNorm statistics set from the packed ones."""
        self._copy(to_packed=False)
        return self.students

    # --- the forward pass ------------------------------------------------------------------------------

    def _conv_bn(self, name: str, x: torch.Tensor, groups: int, stride: int = 1, relu: bool = True) -> torch.Tensor:
        weight = self.weights[name]
        x = F.conv2d(F.relu(x) if relu else x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
        return self.norms[name](x)

    def _cell(self, x: torch.Tensor, stage: int, cell: int) -> torch.Tensor:
        def conv(edge: int, op: str, flat: torch.Tensor, n: int) -> torch.Tensor:
            return self._conv_bn(f"s{stage}_c{cell}_e{edge}_{op}", flat, n)

        groups = [{op: getattr(self, f"index_{edge}_{op}") for op in ops} for edge, ops in enumerate(self.groups)]
        return packed_cell(x, self.k, groups, conv)

    def forward_features(self, images: torch.Tensor) -> list[Features]:
        """Each student's features on the same ``images``."""
        b, k = images.shape[0], self.k
        x = self.norms["stem"](F.conv2d(images, self.weights["stem"], padding=1))
        stages = []
        for stage in range(3):
            if stage > 0:
                a = self._conv_bn(f"s{stage}_a", x, k, stride=2)
                a = self._conv_bn(f"s{stage}_b", a, k)
                x = F.conv2d(F.avg_pool2d(x, 2, 2), self.weights[f"s{stage}_shortcut"], groups=k) + a
            for cell in range(CELLS_PER_STAGE):
                x = self._cell(x, stage, cell)
            stages.append(x)
        pre_pool = F.relu(self.norms["lastact"](x))
        embedding = pre_pool.mean(dim=(2, 3)).view(b, k, -1).transpose(0, 1)  # (K, B, C)
        weight = self.classifier_weight.view(k, self.num_classes, -1)
        logits = torch.baddbmm(self.classifier_bias.view(k, 1, -1), embedding, weight.transpose(1, 2))

        def student(t: torch.Tensor, s: int) -> torch.Tensor:
            return t.view(b, k, -1, *t.shape[2:])[:, s]

        return [
            Features(
                stages=[student(m, s) for m in stages],
                pre_pool=student(pre_pool, s),
                embedding=embedding[s],
                logits=logits[s],
            )
            for s in range(k)
        ]
