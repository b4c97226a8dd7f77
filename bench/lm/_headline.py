"""AutoDistil's headline experiment at a set budget: K=3 SuperLMs against one (K=1) over their union, the
students they select under parameter budgets, and hand-designed baselines distilled with the same objective.

1. Train the three sub-spaces' SuperLMs for ``steps`` each and the union's (``autodistil-all``) for
   ``3 * steps``: the same total budget of SuperLM steps.
2. At each parameter budget, select without retraining: K=3 picks the student with the lowest held-out
   relation loss among the three sub-spaces' students within the budget (each with the weights of its own
   SuperLM); K=1 picks among the union's students with the union's SuperLM. Equal losses go to the cheaper
   student (fewer FLOPs, then parameters), and the number of such ties is reported.
3. Baselines at each budget, each distilled alone from its slice of the teacher for ``steps`` steps with the
   SuperLMs' objective: the truncated teacher (its first N layers at full width, the most that fit) and a
   uniformly narrowed teacher (all its layers, hidden size a multiple of 32 with one head per 32 units and
   FFN ratio 4, the widest that fits). A baseline that cannot fit the budget is left out.
4. Fine-tune every model (and the teacher) with the protocol of :mod:`._protocol`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from spaces import get_space
from spaces.autodistil import (
    HEAD_SIZE,
    SPACE_PREFIX,
    SUBSPACES,
    TEACHER_ARCH,
    UNION_SIZE,
    StudentArch,
    TransformerStudent,
    load_superlm,
    network_cost,
    sliced_student,
)

from ._corpus import TokenCorpus
from ._ground_truth import heldout_sample, truncated_teacher
from ._protocol import Protocol
from ._superlm import SuperLMSettings, train_superlm
from ._teacher import teacher_state
from ._training import distil_student, heldout_loss, student_loss, teacher_targets

K3_SPACES = tuple(SPACE_PREFIX + size for size in SUBSPACES)
K1_SPACE = SPACE_PREFIX + UNION_SIZE


@dataclass(frozen=True)
class HeadlineSettings:
    """``superlm.steps`` is each K=3 SuperLM's budget (the K=1 one gets three times as many steps);
    ``score_size`` held-out sequences score the candidates and every model's relation loss."""

    budgets: tuple[float, ...] = (5e6, 10e6, 16e6)
    superlm: SuperLMSettings = field(default_factory=SuperLMSettings)
    protocol: Protocol = field(default_factory=Protocol)
    score_size: int = 64

    def check(self) -> HeadlineSettings:
        if not self.budgets or any(b <= 0 for b in self.budgets):
            raise ValueError(f"--budgets takes positive parameter counts, got {list(self.budgets)}")
        if self.score_size < 1:
            raise ValueError(f"--score-size must be positive, got {self.score_size}")
        self.superlm.check()
        self.protocol.check()
        return self


@dataclass(frozen=True)
class Pick:
    """A selected student: its space, shape, held-out relation loss with inherited weights, how many
    students were within the budget, and how many others had exactly its loss."""

    space: str
    arch: StudentArch
    loss: float
    candidates: int
    tied: int


def superlm_paths(settings: HeadlineSettings, folder: Path) -> dict[str, Path]:
    return {space: folder / space / "superlm.pt" for space in (*K3_SPACES, K1_SPACE)}


def train_superlms(
    settings: HeadlineSettings, folder: Path, corpus: TokenCorpus, device: str,
    on_step: Callable[[str, int, float], None] | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Train (or resume) the four SuperLMs; the K=1 one with three times the steps of each K=3 one."""
    paths = superlm_paths(settings, folder)
    for space, path in paths.items():
        steps = settings.superlm.steps * (len(K3_SPACES) if space == K1_SPACE else 1)
        train_superlm(space, replace(settings.superlm, steps=steps), out=path, device=device, corpus=corpus,
                      on_step=(lambda step, loss, s=space: on_step(s, step, loss)) if on_step else None)  # fmt: skip
    return paths


def _cost_key(arch: StudentArch) -> tuple[int, int]:
    cost = network_cost(arch, 2)
    return cost.flops, cost.params


def select(spaces: Sequence[str], paths: dict[str, Path], budget: float, ids: torch.Tensor,
           teacher: TransformerStudent) -> Pick | None:  # fmt: skip
    """The student of ``spaces`` within ``budget`` parameters with the lowest relation loss on ``ids`` under
    its space's SuperLM; the cheaper among equals. None where no student fits."""
    device = next(teacher.parameters()).device
    ids = ids.to(device)
    targets, mask = teacher_targets(teacher, ids)
    scored: list[tuple[float, tuple[int, int], str, StudentArch]] = []
    for space in spaces:
        superlm = load_superlm(paths[space], space)[0].to(device)
        with torch.no_grad():
            for arch in get_space(space):
                if network_cost(arch, 2).params <= budget:
                    scored.append(
                        (float(student_loss(superlm, ids, targets, mask, arch)), _cost_key(arch), space, arch)
                    )
    if not scored:
        return None
    scored.sort(key=lambda item: (item[0], item[1]))
    loss, _, space, arch = scored[0]
    tied = sum(1 for item in scored[1:] if item[0] == loss)
    return Pick(space, arch, loss, len(scored), tied)


def picked_network(pick: Pick, paths: dict[str, Path]) -> TransformerStudent:
    return load_superlm(paths[pick.space], pick.space)[0].sub_network(pick.arch)


def truncated_layers(budget: float) -> int | None:
    """The most of the teacher's first layers that fit ``budget`` at full width (None: not even one)."""
    fits = [n for n in range(1, TEACHER_ARCH.layers) if network_cost(_truncated_arch(n), 2).params <= budget]
    return max(fits) if fits else None


def _truncated_arch(layers: int) -> StudentArch:
    return StudentArch(layers, TEACHER_ARCH.hidden, TEACHER_ARCH.heads, TEACHER_ARCH.ffn_ratio)


def narrowed_arch(budget: float) -> StudentArch | None:
    """The teacher narrowed uniformly: all its layers, hidden ``32 k`` with ``k`` heads and FFN ratio 4 (as
    the teacher), the widest that fits ``budget`` and is narrower than the teacher; None if none does."""
    widths = range(HEAD_SIZE * (TEACHER_ARCH.heads - 1), 0, -HEAD_SIZE)
    for hidden in widths:
        arch = StudentArch(TEACHER_ARCH.layers, hidden, hidden // HEAD_SIZE, TEACHER_ARCH.ffn_ratio)
        if network_cost(arch, 2).params <= budget:
            return arch
    return None


def baselines(budget: float) -> list[tuple[str, TransformerStudent]]:
    """The budget's baselines, initialised from the teacher (before their own distillation)."""
    out = []
    layers = truncated_layers(budget)
    if layers is not None:
        out.append((f"teacher, first {layers} layers", truncated_teacher(layers)))
    narrow = narrowed_arch(budget)
    if narrow is not None:
        out.append(("teacher narrowed uniformly", sliced_student(teacher_state(), TEACHER_ARCH.layers, narrow)))
    return out


def distil_baseline(net: TransformerStudent, teacher: TransformerStudent, corpus: TokenCorpus,
                    settings: HeadlineSettings) -> TransformerStudent:  # fmt: skip
    """``net`` distilled alone with the SuperLMs' objective, batch size, learning rate and step count."""
    s = settings.superlm
    net = net.to(next(teacher.parameters()).device)
    distil_student(net, teacher, corpus.train, steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=s.seed)
    return net.eval()


def score_ids(corpus: TokenCorpus, settings: HeadlineSettings) -> torch.Tensor:
    """The held-out sequences candidates and models are scored on (seeded by the SuperLMs' seed)."""
    return heldout_sample(corpus, settings.score_size, settings.superlm.seed + 1).long()


def relation_loss_of(net: TransformerStudent, teacher: TransformerStudent, ids: torch.Tensor) -> float:
    return heldout_loss(net.to(next(teacher.parameters()).device), teacher, ids)


def default_folder() -> Path:
    return Path(os.environ.get("BENCH_AUTODISTIL_DIR") or "results/autodistil") / "headline"
