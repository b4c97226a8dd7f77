"""The KD losses of :mod:`proxies.kd` for a whole chunk of students at once: one K-vector, no host sync.

Each function here is its namesake ``*_loss`` in :mod:`proxies.kd` with a leading student axis on the
student's features (stages and pre-pool maps K x B x C x H x W, embedding K x B x C, logits K x B x
classes) and the teacher's as they are; the engine's tests check the two agree on every student. Where a
loss cannot be formed without looking at the values (RKD's coinciding embeddings) the value comes out
non-finite, and the engine scores that student again one at a time, which says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._base import ProxyError, ProxyInputs
from ._similarity import channel_grams, relation_grams, squared_distances
from .kd import CC_GAMMA, CC_ORDER, KD_TEMPERATURE, regressor

Loss = Callable[[object, object, ProxyInputs], torch.Tensor]


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    """K x B x C x H x W as (K B) x C x H x W."""
    return x.reshape(-1, *x.shape[2:])


def _project(students: torch.Tensor, channels: int, inputs: ProxyInputs, role: str) -> torch.Tensor:
    k, b, c_in = students.shape[:3]
    if c_in == channels:
        return students
    out = F.conv2d(_per_sample(students), regressor(c_in, channels, inputs, role))
    return out.view(k, b, *out.shape[1:])


def _same_resolution(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Students' maps (K x B x C x H x W) and the teacher's (B x C x H x W), the larger pooled to the other."""
    if s.shape[3:] == t.shape[2:]:
        return s, t
    if s.shape[3] * s.shape[4] > t.shape[2] * t.shape[3]:
        pooled = F.adaptive_avg_pool2d(_per_sample(s), t.shape[2:])
        return pooled.view(*s.shape[:3], *pooled.shape[2:]), t
    return s, F.adaptive_avg_pool2d(t, s.shape[3:])


def _paired_stages(s, t) -> list[tuple[torch.Tensor, torch.Tensor]]:
    n = min(len(s.stages), len(t.stages))
    if n == 0:
        raise ProxyError("a network exposes no stage feature maps")
    return list(zip(s.stages[-n:], t.stages[-n:]))


def kd(s, t, inputs: ProxyInputs) -> torch.Tensor:
    if s.logits.shape[1:] != t.logits.shape:
        raise ProxyError("student and teacher logits differ")
    log_p_s = F.log_softmax(s.logits / KD_TEMPERATURE, dim=2)
    log_p_t = F.log_softmax(t.logits / KD_TEMPERATURE, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).flatten(1).sum(1)
    return kl / t.logits.shape[0] * KD_TEMPERATURE**2


def fitnet(s, t, inputs: ProxyInputs) -> torch.Tensor:
    f_s, f_t = s.stages[len(s.stages) // 2], t.stages[len(t.stages) // 2]
    f_s, f_t = _same_resolution(_project(f_s, f_t.shape[1], inputs, "fitnet"), f_t)
    return (f_s - f_t).pow(2).flatten(1).mean(1)


def at(s, t, inputs: ProxyInputs) -> torch.Tensor:
    total = torch.zeros(len(s.logits), device=inputs.device)
    for f_s, f_t in _paired_stages(s, t):
        f_s, f_t = _same_resolution(f_s, f_t)
        a_s = F.normalize(f_s.pow(2).mean(2).flatten(2), dim=2)
        a_t = F.normalize(f_t.pow(2).mean(1).flatten(1), dim=1)
        total = total + (a_s - a_t).pow(2).flatten(1).mean(1)
    return total


def sp(s, t, inputs: ProxyInputs) -> torch.Tensor:
    b = len(inputs.images)
    return squared_distances(relation_grams(t.pre_pool.unsqueeze(0))[0], relation_grams(s.pre_pool), b * b)


def _pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    square = e.pow(2).sum(2)
    dist = (square.unsqueeze(1) + square.unsqueeze(2) - 2 * torch.bmm(e, e.transpose(1, 2))).clamp(min=1e-12).sqrt()
    return dist * (1 - torch.eye(e.shape[1], dtype=e.dtype, device=e.device))


def rkd(s, t, inputs: ProxyInputs) -> torch.Tensor:
    e_s, e_t = s.embedding.flatten(2).double(), t.embedding.flatten(1).double().unsqueeze(0)

    def normalised_distance(e: torch.Tensor) -> torch.Tensor:
        d = _pairwise_distances(e)
        positive = (d > 0).flatten(1).sum(1)  # none positive: 0 / 0, and the student is scored alone
        return d / (d.flatten(1).sum(1) / positive).view(-1, 1, 1)

    def angles(e: torch.Tensor) -> torch.Tensor:
        diff = F.normalize(e.unsqueeze(1) - e.unsqueeze(2), p=2, dim=3)  # K x B x B x C
        return torch.matmul(diff, diff.transpose(2, 3)).flatten(1)

    def smooth_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(a, b.expand_as(a), reduction="none").flatten(1).mean(1)

    distance = smooth_l1(normalised_distance(e_s), normalised_distance(e_t))
    return 25.0 * distance + 50.0 * smooth_l1(angles(e_s), angles(e_t))


def _cosine(e: torch.Tensor) -> torch.Tensor:
    e = F.normalize(e.flatten(2).double(), dim=2)
    return torch.bmm(e, e.transpose(1, 2))


def pkt(s, t, inputs: ProxyInputs) -> torch.Tensor:
    eps = 1e-7

    def probabilities(e: torch.Tensor) -> torch.Tensor:
        similarity = (_cosine(e) + 1.0) / 2.0
        return similarity / similarity.sum(dim=2, keepdim=True)

    p_s, p_t = probabilities(s.embedding), probabilities(t.embedding.unsqueeze(0))
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).flatten(1).mean(1)


def cc(s, t, inputs: ProxyInputs) -> torch.Tensor:
    def correlation(e: torch.Tensor) -> torch.Tensor:
        sim = _cosine(e)
        terms = [
            math.exp(-2 * CC_GAMMA) * (2 * CC_GAMMA) ** p / math.factorial(p) * sim.pow(p) for p in range(CC_ORDER + 1)
        ]
        return torch.stack(terms).sum(0)

    return (correlation(t.embedding.unsqueeze(0)) - correlation(s.embedding)).pow(2).flatten(1).mean(1)


def nst(s, t, inputs: ProxyInputs) -> torch.Tensor:
    total = torch.zeros(len(s.logits), dtype=torch.float64, device=inputs.device)
    for f_s, f_t in _paired_stages(s, t):
        f_s, f_t = _same_resolution(f_s, f_t)
        f_s = F.normalize(f_s.flatten(3).double(), dim=3)  # K x B x C x HW
        f_t = F.normalize(f_t.flatten(2).double(), dim=2)  # B x C x HW
        teacher = (f_t @ f_t.transpose(1, 2)).pow(2).mean()
        own = (f_s @ f_s.transpose(2, 3)).pow(2).flatten(1).mean(1)
        cross = (f_s @ f_t.transpose(1, 2)).pow(2).flatten(1).mean(1)
        total = total + (teacher + own - 2 * cross)
    return total


def ickd(s, t, inputs: ProxyInputs) -> torch.Tensor:
    f_t = t.pre_pool
    f_s = _project(s.pre_pool, f_t.shape[1], inputs, "ickd")
    b, c = f_t.shape[:2]
    return squared_distances(channel_grams(f_t.unsqueeze(0))[0], channel_grams(f_s), b * c)


BATCHED_LOSSES: dict[str, Loss] = {
    "kd": kd,
    "fitnet": fitnet,
    "at": at,
    "sp": sp,
    "rkd": rkd,
    "pkt": pkt,
    "cc": cc,
    "nst": nst,
    "ickd": ickd,
}
