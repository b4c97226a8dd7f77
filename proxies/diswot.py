"""DisWOT (Dong et al., CVPR 2023): how similar a random student's semantics and sample relations are to a
random teacher's, on one real batch.

With ``g`` the gradient of the cross-entropy w.r.t. the classifier weight (K classes x C channels):

- semantic term: ``A_k = g_k g_k^T`` (C x C) per class, rows scaled to unit norm,
  ``D_sem = 1/(K C) sum_k ||A_k(teacher) - A_k(student)||_F^2``;
- relation term: ``G = F F^T`` of the pre-pooling map flattened to ``B x (C H W)``, rows scaled to unit
  norm, ``D_rel = 1/B^2 ||G(teacher) - G(student)||_F^2``;
- ``diswot = -(D_sem + D_rel)``; ``diswot_semantic = -D_sem``; ``diswot_relation = -D_rel``.

The semantic term needs teacher and student classifiers of equal width C. For a teacher of another
width, ``diswot_semantic_gram`` and ``diswot_gram`` replace ``A_k`` by the width-free K x K class Gram
matrix ``g g^T`` (rows scaled to unit norm, distance divided by K^2); they are separate proxies, never a
silent fallback, so one ranking never mixes two formulas.

Where this differs from the published code (github.com/lliai/DisWOT-CVPR2023), on purpose, following
the paper's formula:

- the relation term is computed on the pre-pooling feature map, not on the pooled vector;
- each network's classifier gradient is taken with ``torch.autograd.grad`` on that network alone, so
  nothing accumulates across candidates (the published search loop called ``backward()`` repeatedly
  without clearing ``.grad``);
- the measure registered there as ``diswot`` is a different score (a BatchNorm-variance statistic of
  Gaussian-input forwards); here ``diswot`` is the similarity above.

Both networks run in training mode: BatchNorm normalises with the batch's own statistics, which is
what randomly initialised networks need (their running statistics are the untouched initial 0 and 1,
under which activations of an N(0, 1)-initialised network grow without bound with depth). A teacher
loaded with trained weights comes in evaluation mode from :func:`bench.teachers.load_teacher` and is
used as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from spaces import FeatureNetwork

from ._base import Proxy, ProxyError, ProxyInputs, StudentBatch
from ._nets import finite, require_teacher
from ._registry import register_proxy
from ._similarity import (
    class_channel_matrices,
    class_channel_matrices_of,
    class_gram,
    class_grams,
    relation_gram,
    relation_grams,
    squared_distance,
    squared_distances,
)

SEMANTIC_FORMS = ("class", "gram")


@dataclass(frozen=True)
class Signature:
    """One network's side of the comparison on one batch."""

    width: int
    num_classes: int
    semantic: torch.Tensor | None
    relation: torch.Tensor | None


def classifier_gradient(net: FeatureNetwork, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The cross-entropy gradient w.r.t. the classifier weight (K x C) and the pre-pooling map.

    The backbone runs without autograd: the classifier's gradient depends on the backbone only through
    the embedding, so the logits are recomputed from the detached embedding and only the classifier is
    differentiated.
    """
    with torch.no_grad():
        features = net.forward_features(images)
    weight = net.classifier.weight
    logits = F.linear(features.embedding.detach(), weight, net.classifier.bias)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels), weight)
    return grad, features.pre_pool


def classifier_gradients(students: StudentBatch, labels: torch.Tensor) -> torch.Tensor:
    """:func:`classifier_gradient` of every student at once, in closed form: the mean cross-entropy's
    gradient w.r.t. a linear classifier is ``(softmax(logits) - onehot(labels))^T embedding / B``."""
    embedding = students.features.embedding  # K x B x C
    logits = students.features.logits  # K x B x classes: embedding @ weight^T + bias
    # The one-hot matrix by comparison: F.one_hot reads the labels' range on the host.
    onehot = labels.unsqueeze(1) == torch.arange(logits.shape[2], device=labels.device)
    error = torch.softmax(logits, dim=2) - onehot.to(logits.dtype)
    return torch.bmm(error.transpose(1, 2), embedding) / len(labels)


class DisWOT(Proxy):
    """``-(w_sem D_sem + w_rel D_rel)`` between a random teacher and a random student (see the module)."""

    needs_labels = True
    needs_teacher = True
    # The student is read through one forward_features on the batch and its classifier only.
    feature_only = True
    _DESCRIPTIONS: ClassVar[dict[tuple[str | None, bool], str]] = {
        ("class", True): "DisWOT: -(semantic + relation distance) to a random teacher (Dong et al., CVPR 2023)",
        ("class", False): "DisWOT semantic term: -distance of per-class classifier-gradient correlations",
        (None, True): "DisWOT relation term: -distance of sample-relation Gram matrices of the pre-pool map",
        ("gram", True): "DisWOT, width-free: K x K class Gram semantic term + relation term",
        ("gram", False): "DisWOT semantic term, width-free: -distance of K x K class Gram matrices",
    }

    def __init__(self, *, semantic: str | None = "class", relation: bool = True) -> None:
        if semantic is not None and semantic not in SEMANTIC_FORMS:
            raise ValueError(f"semantic form {semantic!r} is unknown. Valid choices: {', '.join(SEMANTIC_FORMS)}")
        if semantic is None and not relation:
            raise ValueError("DisWOT needs the semantic term, the relation term or both")
        self.semantic = semantic
        self.relation = relation
        self.description = self._DESCRIPTIONS[(semantic, relation)]
        self.needs_labels = semantic is not None

    def signature(self, net: FeatureNetwork, inputs: ProxyInputs) -> Signature:
        grad, pre_pool = classifier_gradient(net, inputs.images, inputs.labels)
        semantic = None
        if self.semantic == "class":
            semantic = class_channel_matrices(grad)
        elif self.semantic == "gram":
            semantic = class_gram(grad)
        return Signature(
            width=grad.shape[1],
            num_classes=grad.shape[0],
            semantic=semantic,
            relation=relation_gram(pre_pool) if self.relation else None,
        )

    def prepare_teacher(self, teacher: FeatureNetwork, inputs: ProxyInputs) -> Signature:
        return self.signature(teacher, inputs)

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = inputs.teacher_state
        if teacher is None:
            teacher = self.prepare_teacher(require_teacher(inputs, self.name), inputs)
        mine = self.signature(student, inputs)
        if mine.num_classes != teacher.num_classes:
            raise ProxyError(
                f"student has {mine.num_classes} classes and the teacher {teacher.num_classes}: "
                "the semantic term compares classifiers of the same task"
            )
        distance = torch.zeros((), dtype=torch.float64, device=inputs.device)
        if self.semantic == "class":
            if mine.width != teacher.width:
                raise ProxyError(
                    f"{self.name!r} compares C x C class matrices, but the student's classifier has C={mine.width} "
                    f"inputs and the teacher's C={teacher.width}; use the width-free variant {self.name}_gram"
                )
            k, c = teacher.num_classes, teacher.width
            distance = distance + squared_distance(teacher.semantic, mine.semantic, k * c)
        elif self.semantic == "gram":
            k = teacher.num_classes
            distance = distance + squared_distance(teacher.semantic, mine.semantic, k * k)
        if self.relation:
            b = len(inputs.images)
            distance = distance + squared_distance(teacher.relation, mine.relation, b * b)
        return -finite(distance, f"{self.name} distance")

    def score_batch(self, students: StudentBatch, inputs: ProxyInputs) -> torch.Tensor:
        teacher = inputs.teacher_state
        if teacher is None:
            teacher = self.prepare_teacher(require_teacher(inputs, self.name), inputs)
        classes, width = students.classifier_weight.shape[1:]
        if classes != teacher.num_classes or (self.semantic == "class" and width != teacher.width):
            raise ProxyError("student and teacher classifiers differ; scored one at a time, which says how")
        distance = torch.zeros(len(students), dtype=torch.float64, device=inputs.device)
        if self.semantic is not None:
            grads = classifier_gradients(students, inputs.labels)
            if self.semantic == "class":
                semantic = squared_distances(teacher.semantic, class_channel_matrices_of(grads), classes * width)
            else:
                semantic = squared_distances(teacher.semantic, class_grams(grads), classes * classes)
            distance = distance + semantic
        if self.relation:
            b = len(inputs.images)
            distance = distance + squared_distances(teacher.relation, relation_grams(students.features.pre_pool), b * b)
        return -distance


register_proxy("diswot", semantic="class", relation=True)(DisWOT)
register_proxy("diswot_semantic", semantic="class", relation=False)(DisWOT)
register_proxy("diswot_relation", semantic=None, relation=True)(DisWOT)
register_proxy("diswot_gram", semantic="gram", relation=True)(DisWOT)
register_proxy("diswot_semantic_gram", semantic="gram", relation=False)(DisWOT)
