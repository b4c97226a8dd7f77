"""Training objectives: cross-entropy, Hinton's KD, and DisWOT's similarity terms as distillation losses.

The proxies in :mod:`proxies` score *random* networks with detached float64 matrices; here the same
quantities are differentiable float32 losses on the training graph:

- ``kd``: ``alpha * T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE`` (Hinton et al. 2015);
- ``sp``: similarity-preserving loss on the pre-pooling map, ``1/B^2 ||G_t - G_s||_F^2`` with ``G = F F^T``
  row-normalised (Tung & Mori 2019), which is DisWOT's relation term;
- ``ickd``: inter-channel correlation of the pre-pooling map, ``1/(B C) sum_b ||A_t - A_s||_F^2``
  (Liu et al. 2021);
- ``diswot``: DisWOT's relation term plus its semantic term. The semantic term compares the per-class
  channel matrices ``A_k = g_k g_k^T`` of the classifier gradient ``g``. For cross-entropy that gradient
  has the closed form ``g = (softmax(z) - onehot(y))^T e / B`` (``e`` the pooled embedding), so the term is
  an explicit function of the student's embedding and logits, differentiable without double backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spaces import Features

from ._recipe import Recipe


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2


def _relation(features: torch.Tensor) -> torch.Tensor:
    flat = features.float().flatten(1)
    return F.normalize(flat @ flat.T, dim=1)


def relation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    b = student.shape[0]
    return (_relation(student) - _relation(teacher)).pow(2).sum() / b**2


def _channel_correlation(features: torch.Tensor) -> torch.Tensor:
    f = features.float().flatten(2)
    return F.normalize(f @ f.transpose(1, 2), dim=2)


def _same_width(student: torch.Tensor, teacher: torch.Tensor, loss: str) -> None:
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f"the {loss!r} distillation term compares C x C matrices, but the student's pre-pooling map has "
            f"C={student.shape[1]} channels and the teacher's C={teacher.shape[1]}; use kd or kd+sp instead"
        )


def ickd_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    _same_width(student, teacher, "ickd")
    b, c = student.shape[:2]
    return (_channel_correlation(student) - _channel_correlation(teacher)).pow(2).sum() / (b * c)


def classifier_gradient(features: Features, labels: torch.Tensor) -> torch.Tensor:
    """d CE / d W of the classifier (K x C), in closed form from the logits and the embedding."""
    logits, embedding = features.logits.float(), features.embedding.float()
    residual = logits.softmax(dim=1) - F.one_hot(labels, logits.shape[1]).float()
    return residual.T @ embedding / logits.shape[0]


def semantic_loss(student: Features, teacher: Features, labels: torch.Tensor) -> torch.Tensor:
    _same_width(student.embedding, teacher.embedding, "diswot")
    g_s, g_t = classifier_gradient(student, labels), classifier_gradient(teacher, labels)
    a_s = F.normalize(g_s.unsqueeze(2) * g_s.unsqueeze(1), dim=2)
    a_t = F.normalize(g_t.unsqueeze(2) * g_t.unsqueeze(1), dim=2)
    k, c = g_s.shape
    return (a_s - a_t).pow(2).sum() / (k * c)


def feature_term(name: str, student: Features, teacher: Features, labels: torch.Tensor) -> torch.Tensor:
    if name == "sp":
        return relation_loss(student.pre_pool, teacher.pre_pool)
    if name == "ickd":
        return ickd_loss(student.pre_pool, teacher.pre_pool)
    if name == "diswot":
        return relation_loss(student.pre_pool, teacher.pre_pool) + semantic_loss(student, teacher, labels)
    raise ValueError(f"unknown distillation term {name!r}. Valid choices: sp, ickd, diswot")


def objective(recipe: Recipe, student: Features, teacher: Features | None, labels: torch.Tensor) -> torch.Tensor:
    """The recipe's training loss of one student on one batch."""
    ce = F.cross_entropy(student.logits.float(), labels)
    if not recipe.distils:
        return ce
    if teacher is None:
        raise ValueError(f"loss {recipe.loss!r} needs the teacher's features")
    if student.logits.shape != teacher.logits.shape:
        raise ValueError(
            f"KD compares logits of equal shape; student {tuple(student.logits.shape)}, "
            f"teacher {tuple(teacher.logits.shape)}: train the teacher on the same dataset"
        )
    loss = recipe.alpha * hinton_kd(student.logits, teacher.logits, recipe.temperature) + (1 - recipe.alpha) * ce
    _, _, term = recipe.loss.partition("+")
    if term:
        loss = loss + recipe.beta * feature_term(term, student, teacher, labels)
    return loss
