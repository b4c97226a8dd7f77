"""Row-normalised Gram matrices and their distances: the shared algebra of DisWOT, SP and ICKD.

All matrices are computed in float64: they are small (B x B, K x K or K x C x C) and the distances
between two nearly equal networks are differences of nearly equal numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relation_gram(features: torch.Tensor) -> torch.Tensor:
    """Sample relations (Tung & Mori, ICCV 2019): ``F F^T`` of the flattened ``B x (C H W)`` features,
    each row scaled to unit L2 norm."""
    flat = features.detach().flatten(1).double()
    return F.normalize(flat @ flat.T, dim=1)


def class_channel_matrices(grad: torch.Tensor) -> torch.Tensor:
    """DisWOT's semantic matrices: for each class ``k``, ``A_k = g_k g_k^T`` (C x C) of the classifier
    gradient's row ``g_k``, each row scaled to unit L2 norm; shape ``K x C x C``."""
    g = grad.detach().double()
    return F.normalize(g.unsqueeze(2) * g.unsqueeze(1), dim=2)


def class_gram(grad: torch.Tensor) -> torch.Tensor:
    """The width-free form: ``g g^T`` (K x K) of the classifier gradient, each row scaled to unit L2 norm."""
    g = grad.detach().double()
    return F.normalize(g @ g.T, dim=1)


def channel_gram(features: torch.Tensor) -> torch.Tensor:
    """ICKD's inter-channel correlation (Liu et al., ICCV 2021): per sample ``f f^T`` (C x C) of the
    ``C x (H W)`` map, each row scaled to unit L2 norm; shape ``B x C x C``."""
    f = features.flatten(2).double()
    return F.normalize(f @ f.transpose(1, 2), dim=2)


def squared_distance(a: torch.Tensor, b: torch.Tensor, norm: float) -> torch.Tensor:
    """``||a - b||_F^2 / norm``."""
    if a.shape != b.shape:
        raise ValueError(f"cannot compare matrices of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return (a - b).pow(2).sum() / norm


# --- many students at once: the same matrices with a leading student axis ---------------------------------


def relation_grams(features: torch.Tensor) -> torch.Tensor:
    """:func:`relation_gram` of each student of ``features`` (K x B x ...): shape K x B x B."""
    flat = features.detach().flatten(2).double()
    return F.normalize(torch.bmm(flat, flat.transpose(1, 2)), dim=2)


def class_channel_matrices_of(grads: torch.Tensor) -> torch.Tensor:
    """:func:`class_channel_matrices` of each student's gradient (K x classes x C): K x classes x C x C."""
    g = grads.detach().double()
    return F.normalize(g.unsqueeze(3) * g.unsqueeze(2), dim=3)


def class_grams(grads: torch.Tensor) -> torch.Tensor:
    """:func:`class_gram` of each student's gradient (K x classes x C): K x classes x classes."""
    g = grads.detach().double()
    return F.normalize(torch.bmm(g, g.transpose(1, 2)), dim=2)


def channel_grams(features: torch.Tensor) -> torch.Tensor:
    """:func:`channel_gram` of each student's map (K x B x C x H x W): K x B x C x C."""
    f = features.flatten(3).double()
    return F.normalize(f @ f.transpose(2, 3), dim=3)


def squared_distances(teacher: torch.Tensor, students: torch.Tensor, norm: float) -> torch.Tensor:
    """:func:`squared_distance` of one teacher matrix to each student's (leading axis K): a K-vector."""
    if teacher.shape != students.shape[1:]:
        raise ValueError(f"cannot compare matrices of shapes {tuple(teacher.shape)} and {tuple(students.shape[1:])}")
    return (students - teacher).pow(2).flatten(1).sum(1) / norm
