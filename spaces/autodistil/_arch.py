"""AutoDistil's student architectures: layers, hidden size, attention heads (of the teacher's size) and FFN
ratio.

A student is sliced from the teacher, by default ``all-MiniLM-L6-v2`` (BERT: 6 layers, hidden 384, 12 heads
of 32, FFN 1536; another with ``$BENCH_LM_TEACHER``, see ``_shape``), so every dimension is at most the
teacher's. The space is split by model size into K=3 compact sub-spaces (AutoDistil, Xu et al. 2022), each
a grid of 108 students for the default teacher (the grids scale with the teacher's shape), and their union
(the K=1 ablation); see ``docs/autodistil.md`` for the grids and why the space is split this way.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ._shape import MINILM_SHAPE, TeacherShape, configured_shape

#: Sub-spaces are registered as ``autodistil-<base|small|tiny>``, their union as ``autodistil-all``.
SPACE_PREFIX = "autodistil-"
TEACHER_SHAPE = configured_shape()
#: Every head has the teacher's size, so a student's attention width is ``heads * HEAD_SIZE``.
HEAD_SIZE = TEACHER_SHAPE.head_size
VOCAB_SIZE = TEACHER_SHAPE.vocab
MAX_POSITIONS = TEACHER_SHAPE.max_positions
TYPE_VOCAB_SIZE = TEACHER_SHAPE.type_vocab
LAYER_NORM_EPS = TEACHER_SHAPE.eps
PAD_ID = 0
#: FLOPs and the proxies' token batches are counted at this sequence length.
SEQ_LEN = 128


@dataclass(frozen=True, order=True)
class StudentArch:
    """One student: ``layers`` Transformer layers of width ``hidden``, ``heads`` heads of ``HEAD_SIZE`` and an FFN of
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
TEACHER_ARCH = StudentArch(
    TEACHER_SHAPE.layers, TEACHER_SHAPE.hidden, TEACHER_SHAPE.heads, TEACHER_SHAPE.intermediate / TEACHER_SHAPE.hidden
)

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


#: The sub-spaces' choices for all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads); :func:`scaled_grids` scales
#: layers, hidden sizes and heads to another teacher in proportion (hidden sizes as multiples of 8).
_MINILM_GRIDS = {
    "base": Grid(layers=(4, 5, 6), hidden=(288, 320, 352, 384), heads=(8, 10, 12), ffn_ratio=(2.5, 3.0, 3.5)),
    "small": Grid(layers=(4, 5, 6), hidden=(192, 224, 256), heads=(6, 8, 10), ffn_ratio=(2.0, 2.5, 3.0, 3.5)),
    "tiny": Grid(layers=(3, 4, 5, 6), hidden=(96, 128, 160), heads=(4, 5, 6), ffn_ratio=(2.0, 2.5, 3.0)),
}


def _scaled(values: tuple[int, ...], ours: int, theirs: int, step: int, least: int) -> tuple[int, ...]:
    return tuple(sorted({max(least, step * round(v * theirs / ours / step)) for v in values}))


def scaled_grids(shape: TeacherShape) -> dict[str, Grid]:
    """The three sub-spaces for a teacher of ``shape``: the default grids with layers, hidden sizes and heads
    scaled in proportion to the teacher's (at least 2 layers), FFN ratios kept below the teacher's."""
    m = MINILM_SHAPE
    ratio = shape.intermediate / shape.hidden
    grids = {}
    for name, g in _MINILM_GRIDS.items():
        ratios = tuple(r for r in g.ffn_ratio if r < ratio) or (min(g.ffn_ratio[0], ratio),)
        grids[name] = Grid(
            layers=_scaled(g.layers, m.layers, shape.layers, 1, 2),
            hidden=_scaled(g.hidden, m.hidden, shape.hidden, 8, 8),
            heads=_scaled(g.heads, m.heads, shape.heads, 1, 1),
            ffn_ratio=ratios,
        )
    return grids


#: K=3 sub-spaces by model size (see ``docs/autodistil.md`` for the reasoning). Hidden sizes do not overlap,
#: so every student belongs to one sub-space; depth (half to all of the teacher's layers) and heads stay
#: high in each, no student has one layer, and the teacher itself (a larger FFN ratio) is in none of them.
SUBSPACES: dict[str, Grid] = scaled_grids(TEACHER_SHAPE)
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
