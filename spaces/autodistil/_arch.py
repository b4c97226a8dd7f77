"""AutoDistil's student architectures: layers, hidden size, attention heads (of size 32) and FFN ratio.

A student is sliced from the teacher, ``all-MiniLM-L6-v2`` (BERT: 6 layers, hidden 384, 12 heads of 32,
FFN 1536), so every dimension is at most the teacher's. The space is split by model size into K=3
compact sub-spaces (AutoDistil, Xu et al. 2022), each a grid of 108 students, and their union (the K=1
ablation); see ``docs/autodistil.md`` for the grids and why the space is split this way.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

#: Sub-spaces are registered as ``autodistil-<base|small|tiny>``, their union as ``autodistil-all``.
SPACE_PREFIX = "autodistil-"
#: Every head has the teacher's size, so a student's attention width is ``heads * HEAD_SIZE``.
HEAD_SIZE = 32
VOCAB_SIZE = 30522
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
LAYER_NORM_EPS = 1e-12
PAD_ID = 0
#: FLOPs and the proxies' token batches are counted at this sequence length.
SEQ_LEN = 128


@dataclass(frozen=True, order=True)
class StudentArch:
    """One student: ``layers`` Transformer layers of width ``hidden``, ``heads`` heads of 32 and an FFN of
    ``round(ffn_ratio * hidden)`` units."""

    layers: int
    hidden: int
    heads: int
    ffn_ratio: float

    @property
    def attention(self) -> int:
        """Width of the query, key and value projections (it need not equal ``hidden``)."""
        return self.heads * HEAD_SIZE

    @property
    def intermediate(self) -> int:
        return round(self.ffn_ratio * self.hidden)

    def __str__(self) -> str:
        return to_arch_str(self)


#: The teacher, as a member of the family: what slicing with no reduction gives.
TEACHER_ARCH = StudentArch(layers=6, hidden=384, heads=12, ffn_ratio=4.0)

_ARCH_RE = re.compile(r"^L(\d+)_H(\d+)_A(\d+)_R(\d+(?:\.\d+)?)$")


def to_arch_str(arch: StudentArch) -> str:
    """``L4_H256_A8_R3.0``: layers, hidden size, heads, FFN ratio."""
    return f"L{arch.layers}_H{arch.hidden}_A{arch.heads}_R{arch.ffn_ratio:.1f}"


def parse_arch_str(text: str) -> StudentArch:
    match = _ARCH_RE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a student arch string like L4_H256_A8_R3.0 (layers, hidden, heads, ratio)")
    layers, hidden, heads, ratio = int(match[1]), int(match[2]), int(match[3]), float(match[4])
    return check_arch(StudentArch(layers, hidden, heads, ratio))


def check_arch(arch: StudentArch) -> StudentArch:
    """``arch`` if the teacher can be sliced into it; ValueError naming the dimension otherwise."""
    t = TEACHER_ARCH
    limits = {
        "layers": (arch.layers, t.layers),
        "hidden": (arch.hidden, t.hidden),
        "heads": (arch.heads, t.heads),
        "FFN width (ratio x hidden)": (arch.intermediate, t.intermediate),
    }
    for what, (value, most) in limits.items():
        if not 1 <= value <= most:
            raise ValueError(f"student {to_arch_str(arch)}: {what} must be in 1..{most} (the teacher's), got {value}")
    return arch


@dataclass(frozen=True)
class Grid:
    """The choices of each dimension of one sub-space; students are their product, in this order."""

    layers: tuple[int, ...]
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    ffn_ratio: tuple[float, ...]

    def archs(self) -> list[StudentArch]:
        return [
            check_arch(StudentArch(*values))
            for values in itertools.product(self.layers, self.hidden, self.heads, self.ffn_ratio)
        ]

    @property
    def largest(self) -> StudentArch:
        return StudentArch(max(self.layers), max(self.hidden), max(self.heads), max(self.ffn_ratio))

    @property
    def smallest(self) -> StudentArch:
        return StudentArch(min(self.layers), min(self.hidden), min(self.heads), min(self.ffn_ratio))


@dataclass(frozen=True)
class GridUnion:
    """Several grids searched as one space (AutoDistil's K=1 ablation): their students, in grid order,
    without repeats; the largest and smallest student take each dimension's extreme over all of them."""

    parts: tuple[Grid, ...]

    def archs(self) -> list[StudentArch]:
        return list(dict.fromkeys(a for grid in self.parts for a in grid.archs()))

    def _values(self, name: str) -> tuple:
        return tuple(sorted({v for grid in self.parts for v in getattr(grid, name)}))

    @property
    def layers(self) -> tuple[int, ...]:
        return self._values("layers")

    @property
    def hidden(self) -> tuple[int, ...]:
        return self._values("hidden")

    @property
    def heads(self) -> tuple[int, ...]:
        return self._values("heads")

    @property
    def ffn_ratio(self) -> tuple[float, ...]:
        return self._values("ffn_ratio")

    @property
    def largest(self) -> StudentArch:
        return StudentArch(max(self.layers), max(self.hidden), max(self.heads), max(self.ffn_ratio))

    @property
    def smallest(self) -> StudentArch:
        return StudentArch(min(self.layers), min(self.hidden), min(self.heads), min(self.ffn_ratio))


#: K=3 sub-spaces by model size (see ``docs/autodistil.md`` for the reasoning). Hidden sizes do not overlap,
#: so every student belongs to one sub-space; depth (3-6 of the teacher's 6 layers) and heads stay high in
#: each, no student has one layer, and the teacher itself (FFN ratio 4.0) is in none of them.
SUBSPACES: dict[str, Grid] = {
    "base": Grid(layers=(4, 5, 6), hidden=(288, 320, 352, 384), heads=(8, 10, 12), ffn_ratio=(2.5, 3.0, 3.5)),
    "small": Grid(layers=(4, 5, 6), hidden=(192, 224, 256), heads=(6, 8, 10), ffn_ratio=(2.0, 2.5, 3.0, 3.5)),
    "tiny": Grid(layers=(3, 4, 5, 6), hidden=(96, 128, 160), heads=(4, 5, 6), ffn_ratio=(2.0, 2.5, 3.0)),
}
#: The K=1 ablation: one space (and one SuperLM) over the union of the three sub-spaces.
UNION_SIZE = "all"
UNION = GridUnion(tuple(SUBSPACES.values()))


def grid_for(size: str) -> Grid | GridUnion:
    """The grid of ``autodistil-<size>``: a sub-space's, or the union's for ``all``."""
    return UNION if size == UNION_SIZE else SUBSPACES[size]


def kept_layers(layers: int, source_layers: int) -> list[int]:
    """Which of ``source_layers`` layers a ``layers``-layer student keeps: evenly spread, always the last one
    (whose self-attention the relation distillation matches)."""
    if not 1 <= layers <= source_layers:
        raise ValueError(f"cannot keep {layers} of {source_layers} layers")
    return [(i + 1) * source_layers // layers - 1 for i in range(layers)]
