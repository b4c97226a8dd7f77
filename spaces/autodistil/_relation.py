"""Self-attention relation distillation (MiniLMv2, Wang et al. 2021), AutoDistil's task-agnostic objective.

For each of the last layer's queries, keys and values (``B x T x D``), the ``D`` columns are split into
``R`` relation heads (the teacher's head count, 12 for the default teacher) and each head's scaled dot-product relation
``softmax(X X^T / sqrt(d))`` over the real tokens is compared with the teacher's by KL divergence. The split
is ``torch.tensor_split``, whose chunks differ in size by at most one, so the student's width ``D`` need not
be a multiple of ``R``: any head count works. The loss is the sum of the three KL divergences, each
averaged over relation heads and real query tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._arch import TEACHER_ARCH

#: The teacher's head count (12 for all-MiniLM-L6-v2): the number of relation heads of every student.
RELATION_HEADS = TEACHER_ARCH.heads


def relation_log_probs(x: torch.Tensor, mask: torch.Tensor, heads: int = RELATION_HEADS) -> torch.Tensor:
    """``B x heads x T x T`` log-probabilities of the relation of ``x`` (``B x T x D``) with itself."""
    if x.shape[-1] < heads:
        raise ValueError(f"cannot split {x.shape[-1]} columns into {heads} relation heads")
    chunks = torch.tensor_split(x, heads, dim=-1)
    key_bias = (~mask)[:, None, None, :].to(x.dtype) * torch.finfo(x.dtype).min
    out = []
    # Chunks of one size are stacked and computed together: at most two groups (sizes q + 1 and q).
    start = 0
    while start < heads:
        size = chunks[start].shape[-1]
        end = start
        while end < heads and chunks[end].shape[-1] == size:
            end += 1
        group = torch.stack(chunks[start:end], dim=1)  # B x n x T x size
        scores = group @ group.transpose(-1, -2) / math.sqrt(size) + key_bias
        out.append(scores.log_softmax(dim=-1))
        start = end
    return torch.cat(out, dim=1)


def relation_kl(teacher: torch.Tensor, student: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of two relation log-probabilities, averaged over heads and real queries."""
    keys = mask[:, None, None, :]
    terms = torch.where(keys, teacher.exp() * (teacher - student), torch.zeros((), dtype=teacher.dtype))
    per_query = terms.sum(dim=-1)  # B x heads x T
    queries = mask[:, None, :].to(per_query.dtype)
    return (per_query * queries).sum() / (queries.sum() * teacher.shape[1])


def teacher_relations(
    qkv: Sequence[torch.Tensor], mask: torch.Tensor, heads: int = RELATION_HEADS
) -> list[torch.Tensor]:
    """The teacher's query, key and value relations, computed once per batch (no gradient)."""
    with torch.no_grad():
        return [relation_log_probs(x, mask, heads) for x in qkv]


def relation_loss(
    teacher: Sequence[torch.Tensor], qkv: Sequence[torch.Tensor], mask: torch.Tensor, heads: int = RELATION_HEADS
) -> torch.Tensor:
    """Q-Q + K-K + V-V relation KL of a student (its last layer's ``qkv``) against ``teacher_relations``."""
    if len(teacher) != 3 or len(qkv) != 3:
        raise ValueError("relation distillation compares queries, keys and values: three tensors each")
    return sum(
        (relation_kl(t, relation_log_probs(x, mask, heads), mask) for t, x in zip(teacher, qkv)),
        start=torch.zeros((), device=mask.device),
    )
