"""Relation distillation steps shared by SuperLM training and the ground truth's student distillation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from spaces.autodistil import (
    StudentArch,
    TransformerStudent,
    relation_loss,
    teacher_relations,
)

from .. import devices
from ._batches import trim


def resolve_device(device: str) -> torch.device:
    """:func:`bench.devices.resolve_device` as a ``torch.device``."""
    return torch.device(devices.resolve_device(device))


def teacher_targets(teacher: TransformerStudent, ids: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The teacher's Q/K/V relations on ``ids`` and the token mask (no gradient)."""
    with torch.no_grad():
        features = teacher.forward_features(ids)
    return teacher_relations(features.qkv, features.mask), features.mask


def student_loss(
    net: TransformerStudent,
    ids: torch.Tensor,
    targets: Sequence[torch.Tensor],
    mask: torch.Tensor,
    arch: StudentArch | None = None,
) -> torch.Tensor:
    """Relation distillation loss of ``net`` (or its sub-network ``arch``) against the teacher's relations."""
    features = net.forward_features(ids, arch=arch)
    return relation_loss(targets, features.qkv, mask)


def heldout_loss(
    net: TransformerStudent,
    teacher: TransformerStudent,
    heldout: torch.Tensor,
    *,
    arch: StudentArch | None = None,
    batch_size: int = 64,
) -> float:
    """Mean relation loss over ``heldout`` sequences (weighted by batch), in batches, without gradients."""
    device = next(net.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(heldout), batch_size):
            ids = trim(heldout[start : start + batch_size]).long().to(device)
            targets, mask = teacher_targets(teacher, ids)
            total += float(student_loss(net, ids, targets, mask, arch)) * len(ids)
            count += len(ids)
    return total / count


def warmup_lr(step: int, total: int, lr: float, warmup: float = 0.1) -> float:
    """Linear warm-up over the first ``warmup`` share of steps, then linear decay to zero (BERT's schedule)."""
    warm = max(1, math.ceil(warmup * total))
    if step < warm:
        return lr * (step + 1) / warm
    return lr * max(0.0, (total - step) / max(1, total - warm))


def distil_student(
    student: TransformerStudent,
    teacher: TransformerStudent,
    train: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
) -> list[float]:
    """Train ``student`` alone by relation distillation for ``steps`` steps; the loss of each step."""
    device = next(student.parameters()).device
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    student.train()
    for step in range(steps):
        rows = torch.randint(len(train), (batch_size,), generator=gen)
        ids = trim(train[rows]).long().to(device)
        targets, mask = teacher_targets(teacher, ids)
        for group in optimizer.param_groups:
            group["lr"] = warmup_lr(step, steps, lr)
        loss = student_loss(student, ids, targets, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
