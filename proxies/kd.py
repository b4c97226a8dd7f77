"""KD-based zero-cost proxies: minus one distillation loss between a random teacher and a random student
on one batch (DisWOT, CVPR 2023, Sec. 4: distillation losses turn into training-free scores).

Each loss is the method's own, on the features its paper (and the RepDistiller implementations that
DisWOT's code builds on) distils:

========  =====================================================  =========================================
proxy     loss                                                   features
========  =====================================================  =========================================
kd        KL(teacher || student) of softmax(logits / 4), x 4^2   logits (Hinton et al. 2015)
fitnet    mean squared error                                     middle stage map (Romero et al. 2015)
at        squared distance of normalised attention maps          every stage map (Zagoruyko & Komodakis 2017)
sp        relation Gram distance (= DisWOT's relation term)      pre-pooling map (Tung & Mori 2019)
rkd       distance + angle relation, weights 25 and 50           pooled embedding (Park et al. 2019)
pkt       KL of cosine-similarity distributions                  pooled embedding (Passalis & Tefas 2018)
cc        Taylor-expanded Gaussian-kernel correlation distance   pooled embedding (Peng et al. 2019)
nst       polynomial-kernel MMD of channel distributions         every stage map (Huang & Wang 2017)
ickd      inter-channel correlation distance                     pre-pooling map (Liu et al. 2021)
========  =====================================================  =========================================

Width mismatches are handled as each method's paper does: FitNet and ICKD map the student's channels
to the teacher's with a 1x1 convolution regressor, here drawn once from PyTorch's default convolution
initialisation with a generator seeded by the run's seed (an untrained regressor, as everything else
here is untrained); AT, SP, RKD, PKT, CC and NST compare width-free quantities. Maps of different
resolution are average-pooled to the smaller one (RepDistiller's AT and NST do the same). When the two
networks have different numbers of stages, AT and NST pair the last ones. CC follows its paper's
Taylor-expanded Gaussian kernel rather than RepDistiller's simplified product of embedding differences.

``ickd`` is ICKD's loss on feature maps; DisWOT's semantic term is the same row-normalised Gram
distance applied to classifier gradients instead (``diswot_semantic``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from spaces import FeatureNetwork, Features

from ._base import Proxy, ProxyError, ProxyInputs, StudentBatch
from ._nets import finite, generator, require_teacher
from ._registry import register_proxy
from ._similarity import channel_gram, relation_gram, squared_distance


def detached_features(net: FeatureNetwork, images: torch.Tensor) -> Features:
    with torch.no_grad():
        return net.forward_features(images)


class DistillationProxy(Proxy):
    """Minus a distillation loss ``loss(student_features, teacher_features, inputs)``; higher = closer."""

    needs_teacher = True
    # The student is read through one forward_features on the batch only.
    feature_only = True

    def __init__(self, *, loss: Callable[[Features, Features, ProxyInputs], torch.Tensor], description: str) -> None:
        self.loss = loss
        self.description = description

    def prepare_teacher(self, teacher: FeatureNetwork, inputs: ProxyInputs) -> Features:
        return detached_features(teacher, inputs.images)

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = inputs.teacher_state
        if teacher is None:
            teacher = self.prepare_teacher(require_teacher(inputs, self.name), inputs)
        return -finite(self.loss(detached_features(student, inputs.images), teacher, inputs), f"{self.name} loss")

    def score_batch(self, students: StudentBatch, inputs: ProxyInputs) -> torch.Tensor | None:
        from ._kd_batched import BATCHED_LOSSES

        loss = BATCHED_LOSSES.get(self.name)
        if loss is None:
            return None
        teacher = inputs.teacher_state
        if teacher is None:
            teacher = self.prepare_teacher(require_teacher(inputs, self.name), inputs)
        with torch.no_grad():
            return -loss(students.features, teacher, inputs)


# --- matching shapes --------------------------------------------------------------------------------


def _project_channels(student: torch.Tensor, channels: int, inputs: ProxyInputs, role: str) -> torch.Tensor:
    """The student's map with ``channels`` channels through a seeded, untrained 1x1 convolution regressor."""
    c_in = student.shape[1]
    if c_in == channels:
        return student
    return F.conv2d(student, regressor(c_in, channels, inputs, role))


def regressor(c_in: int, channels: int, inputs: ProxyInputs, role: str) -> torch.Tensor:
    """The seeded, untrained 1x1 convolution weight (channels x c_in x 1 x 1) that maps a student's width."""
    # PyTorch's default Conv2d initialisation (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    gen = generator(zlib.crc32(f"{inputs.seed}|{role}".encode()), inputs.device)
    bound = 1.0 / math.sqrt(c_in)
    return torch.empty(channels, c_in, 1, 1, device=inputs.device).uniform_(-bound, bound, generator=gen)


def _same_resolution(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two maps to the other's resolution."""
    if a.shape[2:] == b.shape[2:]:
        return a, b
    if a.shape[2] * a.shape[3] > b.shape[2] * b.shape[3]:
        return F.adaptive_avg_pool2d(a, b.shape[2:]), b
    return a, F.adaptive_avg_pool2d(b, a.shape[2:])


def _paired_stages(s: Features, t: Features) -> list[tuple[torch.Tensor, torch.Tensor]]:
    n = min(len(s.stages), len(t.stages))
    if n == 0:
        raise ProxyError("a network exposes no stage feature maps")
    return list(zip(s.stages[-n:], t.stages[-n:]))


def _same_classes(s: Features, t: Features) -> None:
    if s.logits.shape != t.logits.shape:
        raise ProxyError(f"student logits {tuple(s.logits.shape)} and teacher logits {tuple(t.logits.shape)} differ")


# --- the losses --------------------------------------------------------------------------------------

KD_TEMPERATURE = 4.0


def kd_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    _same_classes(s, t)
    temp = KD_TEMPERATURE
    log_p_s = F.log_softmax(s.logits / temp, dim=1)
    log_p_t = F.log_softmax(t.logits / temp, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temp**2


def fitnet_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    # RepDistiller's default hint layer is the middle of the three stages.
    f_s, f_t = s.stages[len(s.stages) // 2], t.stages[len(t.stages) // 2]
    f_s = _project_channels(f_s, f_t.shape[1], inputs, "fitnet")
    f_s, f_t = _same_resolution(f_s, f_t)
    return F.mse_loss(f_s, f_t)


def _attention(f: torch.Tensor) -> torch.Tensor:
    return F.normalize(f.pow(2).mean(1).flatten(1))


def at_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    total = torch.zeros((), device=inputs.device)
    for f_s, f_t in _paired_stages(s, t):
        f_s, f_t = _same_resolution(f_s, f_t)
        total = total + (_attention(f_s) - _attention(f_t)).pow(2).mean()
    return total


def sp_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    b = len(inputs.images)
    return squared_distance(relation_gram(t.pre_pool), relation_gram(s.pre_pool), b * b)


def _pairwise_distance(e: torch.Tensor) -> torch.Tensor:
    square = e.pow(2).sum(1)
    dist = (square.unsqueeze(0) + square.unsqueeze(1) - 2 * e @ e.T).clamp(min=1e-12).sqrt()
    dist = dist.clone()
    dist[range(len(e)), range(len(e))] = 0
    return dist


def rkd_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    # Distance and angle weights 25 and 50 as in RepDistiller (the paper's 1:2 ratio).
    e_s, e_t = s.embedding.flatten(1).double(), t.embedding.flatten(1).double()

    def normalised_distance(e: torch.Tensor) -> torch.Tensor:
        d = _pairwise_distance(e)
        positive = d[d > 0]
        if positive.numel() == 0:
            raise ProxyError("all embeddings of the batch coincide: relative distances are undefined")
        return d / positive.mean()

    distance = F.smooth_l1_loss(normalised_distance(e_s), normalised_distance(e_t))

    def angles(e: torch.Tensor) -> torch.Tensor:
        diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
        return torch.bmm(diff, diff.transpose(1, 2)).flatten()

    angle = F.smooth_l1_loss(angles(e_s), angles(e_t))
    return 25.0 * distance + 50.0 * angle


def pkt_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    eps = 1e-7

    def probabilities(e: torch.Tensor) -> torch.Tensor:
        e = F.normalize(e.flatten(1).double(), dim=1)
        similarity = (e @ e.T + 1.0) / 2.0  # cosine similarity shifted into [0, 1]
        return similarity / similarity.sum(dim=1, keepdim=True)

    p_s, p_t = probabilities(s.embedding), probabilities(t.embedding)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


CC_GAMMA, CC_ORDER = 0.4, 2


def cc_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    # Peng et al.: a Gaussian RBF kernel on L2-normalised embeddings, expanded to order P=2, gamma=0.4.
    def correlation(e: torch.Tensor) -> torch.Tensor:
        e = F.normalize(e.flatten(1).double(), dim=1)
        sim = e @ e.T
        terms = [
            math.exp(-2 * CC_GAMMA) * (2 * CC_GAMMA) ** p / math.factorial(p) * sim.pow(p) for p in range(CC_ORDER + 1)
        ]
        return torch.stack(terms).sum(0)

    return (correlation(t.embedding) - correlation(s.embedding)).pow(2).mean()


def _poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.transpose(1, 2)).pow(2)


def nst_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64, device=inputs.device)
    for f_s, f_t in _paired_stages(s, t):
        f_s, f_t = _same_resolution(f_s, f_t)
        f_s = F.normalize(f_s.flatten(2).double(), dim=2)
        f_t = F.normalize(f_t.flatten(2).double(), dim=2)
        total = total + (
            _poly_kernel(f_t, f_t).mean() + _poly_kernel(f_s, f_s).mean() - 2 * _poly_kernel(f_s, f_t).mean()
        )
    return total


def ickd_loss(s: Features, t: Features, inputs: ProxyInputs) -> torch.Tensor:
    f_t = t.pre_pool
    f_s = _project_channels(s.pre_pool, f_t.shape[1], inputs, "ickd")
    b, c = f_t.shape[:2]
    return squared_distance(channel_gram(f_t), channel_gram(f_s), b * c)


LOSSES: dict[str, tuple[Callable[[Features, Features, ProxyInputs], torch.Tensor], str]] = {
    "kd": (kd_loss, "-KD loss (T=4) to a random teacher's logits (Hinton et al. 2015)"),
    "fitnet": (fitnet_loss, "-FitNet hint MSE to a random teacher's middle stage (Romero et al. 2015)"),
    "at": (at_loss, "-attention-transfer loss to a random teacher's stages (Zagoruyko & Komodakis 2017)"),
    "sp": (sp_loss, "-similarity-preserving loss to a random teacher, pre-pool map (Tung & Mori 2019)"),
    "rkd": (rkd_loss, "-relational KD (distance + angle) to a random teacher's embedding (Park et al. 2019)"),
    "pkt": (pkt_loss, "-probabilistic knowledge transfer to a random teacher's embedding (Passalis & Tefas 2018)"),
    "cc": (cc_loss, "-correlation-congruence loss to a random teacher's embedding (Peng et al. 2019)"),
    "nst": (nst_loss, "-neuron-selectivity-transfer MMD to a random teacher's stages (Huang & Wang 2017)"),
    "ickd": (ickd_loss, "-inter-channel-correlation loss to a random teacher's pre-pool map (Liu et al. 2021)"),
}

for _name, (_loss, _description) in LOSSES.items():
    register_proxy(_name, loss=_loss, description=_description)(DistillationProxy)
