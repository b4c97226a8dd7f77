"""The three AutoDistil sub-spaces as :class:`~spaces.SearchSpace` s: ``autodistil-base``, ``-small``, ``-tiny``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spaces._base import Cost, SearchSpace
from spaces._catalog import SPACES

from ._arch import (
    SEQ_LEN,
    SPACE_PREFIX,
    SUBSPACES,
    UNION_SIZE,
    Grid,
    GridUnion,
    StudentArch,
    grid_for,
    parse_arch_str,
    to_arch_str,
)
from ._extra import require_text_extra

if TYPE_CHECKING:
    import optuna

    from ._network import TransformerStudent

#: Datasets of the token batches: ``corpus`` is the held-out split of the task-agnostic distillation corpus
#: (no labels); the GLUE tasks give labelled sentences. Each has a two-way classifier head.
DATASET_CLASSES = {"corpus": 2, "sst2": 2, "cola": 2, "mrpc": 2, "rte": 2}
#: Optuna parameter names, in grid order; the union (not a product of choices) has one, the student.
PARAMS = ("layers", "hidden", "heads", "ffn_ratio")
UNION_PARAM = "student"


class AutoDistilSpace(SearchSpace[StudentArch]):
    """One sub-space (a grid of Transformer students sliced from all-MiniLM-L6-v2), or their union."""

    num_classes = DATASET_CLASSES
    #: The scorer hands these networks ``B x T`` token ids rather than images.
    input_kind = "tokens"

    def __init__(self, size: str) -> None:
        self.size = size
        self.name = SPACE_PREFIX + size
        self.grid: Grid | GridUnion = grid_for(size)
        self._archs = self.grid.archs()
        self._index = {a: i for i, a in enumerate(self._archs)}

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        import optuna

        g = self.grid
        if isinstance(g, GridUnion):
            return {UNION_PARAM: optuna.distributions.CategoricalDistribution([to_arch_str(a) for a in self._archs])}
        choices = (g.layers, g.hidden, g.heads, g.ffn_ratio)
        return {name: optuna.distributions.CategoricalDistribution(c) for name, c in zip(PARAMS, choices)}

    def from_params(self, params: Mapping[str, Any]) -> StudentArch:
        if isinstance(self.grid, GridUnion):
            if UNION_PARAM not in params:
                raise ValueError(f"{self.name} parameters lack {UNION_PARAM}")
            return self._member(parse_arch_str(str(params[UNION_PARAM])))
        missing = [p for p in PARAMS if p not in params]
        if missing:
            raise ValueError(f"{self.name} parameters lack {', '.join(missing)}")
        arch = StudentArch(
            int(params["layers"]), int(params["hidden"]), int(params["heads"]), float(params["ffn_ratio"])
        )
        return self._member(arch)

    def to_params(self, arch: StudentArch) -> dict[str, Any]:
        if isinstance(self.grid, GridUnion):
            return {UNION_PARAM: to_arch_str(arch)}
        return {"layers": arch.layers, "hidden": arch.hidden, "heads": arch.heads, "ffn_ratio": arch.ffn_ratio}

    def _member(self, arch: StudentArch) -> StudentArch:
        if arch not in self._index:
            g = self.grid
            if isinstance(g, GridUnion):
                raise ValueError(f"student {to_arch_str(arch)} is in none of the sub-spaces {self.name} joins")
            raise ValueError(
                f"student {to_arch_str(arch)} is not in {self.name}: layers in {g.layers}, hidden in {g.hidden}, "
                f"heads in {g.heads}, FFN ratio in {g.ffn_ratio}"
            )
        return arch

    def parse(self, text: str) -> StudentArch:
        text = text.strip()
        if text.lstrip("-").isdigit():
            return self.arch_at(int(text))
        return self._member(parse_arch_str(text))

    def to_str(self, arch: StudentArch) -> str:
        return to_arch_str(arch)

    def build(self, arch: StudentArch, num_classes: int) -> TransformerStudent:
        from ._network import TransformerStudent

        net = TransformerStudent(self._member(arch), num_classes)
        net.space_name = self.name  # which SuperLM it inherits from (a student of a sub-space is in the union too)
        return net

    def cost(self, arch: StudentArch, num_classes: int) -> Cost:
        from ._network import network_cost

        return network_cost(arch, num_classes)

    def inherited_weights_key(self) -> str:
        """The content hash of this sub-space's SuperLM checkpoint ("none" without one): part of score-cache
        keys, so that retraining the SuperLM invalidates the ``superlm`` scores made with the old one."""
        from ._superlm import checkpoint_path

        path = checkpoint_path(self.name)
        if not path.is_file():
            return "none"
        digest = hashlib.sha1()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:16]

    def input_size(self) -> Sequence[int]:
        return (SEQ_LEN,)

    def __len__(self) -> int:
        return len(self._archs)

    def index(self, arch: StudentArch) -> int:
        return self._index[self._member(arch)]

    def arch_at(self, index: int) -> StudentArch:
        if not 0 <= index < len(self._archs):
            raise ValueError(f"{self.name} index {index} is out of range 0..{len(self._archs) - 1}")
        return self._archs[index]


def _register(size: str) -> None:
    def factory() -> AutoDistilSpace:
        # Its teacher, tokenizer and GLUE batches come with the optional text extra: say so up front.
        require_text_extra(f"space {SPACE_PREFIX + size!r}")
        return AutoDistilSpace(size)

    factory.__doc__ = (
        "AutoDistil's union of its three sub-spaces (the K=1 ablation)." if size == UNION_SIZE
        else f"AutoDistil's {size} sub-space."
    )  # fmt: skip
    SPACES.register(SPACE_PREFIX + size, factory)


for _size in (*SUBSPACES, UNION_SIZE):
    _register(_size)
