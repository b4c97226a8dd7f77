"""The proxy contract: a training-free score of a student network, where higher means a better student."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from spaces import FeatureNetwork, SearchSpace


@dataclass(frozen=True)
class ProxyInputs:
    """Everything a proxy may read besides the student.

    ``teacher_state`` is what the proxy's own :meth:`Proxy.prepare_teacher` returned for this batch:
    the scorer computes it once and hands it to every student.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    seed: int
    teacher: FeatureNetwork | None = None
    teacher_state: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.images.device


@dataclass(frozen=True)
class StudentBatch:
    """Many students' features on one batch, each tensor with a leading student axis of length K.

    ``features`` has the fields of :class:`spaces.Features`: ``stages`` (each K x B x C x H x W), ``pre_pool``
    (K x B x C x H x W), ``embedding`` (K x B x C) and ``logits`` (K x B x classes); ``classifier_weight``
    is K x classes x C and ``classifier_bias`` K x classes.
    """

    features: Any
    classifier_weight: torch.Tensor
    classifier_bias: torch.Tensor

    def __len__(self) -> int:
        return len(self.classifier_weight)


class ProxyError(RuntimeError):
    """A proxy could not score a student; the reason is recorded and the run goes on."""


class Proxy(abc.ABC):
    """A training-free score of a student (alone or against a teacher); higher is better.

    Subclasses declare what they need with the class flags below, so the scorer can prepare a batch,
    a teacher or gradients only when some proxy asks for them. :meth:`score` must be deterministic
    for a fixed student (the scorer seeds the student's initialisation) and must raise
    :class:`ProxyError` rather than return NaN when it cannot score.
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = False
    needs_teacher: ClassVar[bool] = False
    #: True when the score depends on the student only through one ``student.forward_features(inputs.images)``
    #: (no gradient into the backbone) and ``student.classifier``: the batched engine can then run many
    #: students' forward passes at once and hand each proxy a student whose features are precomputed.
    feature_only: ClassVar[bool] = False
    #: The inputs of the networks it can score: ``image`` (convolutional students) and ``tokens``
    #: (Transformer students of a text space); the scorer refuses a proxy for a space it does not fit.
    input_kinds: ClassVar[tuple[str, ...]] = ("image", "tokens")
    #: A one-line description for ``bench proxies`` and tables, with the paper it comes from.
    description: ClassVar[str] = ""
    #: False for a proxy that reads only the architecture (:meth:`score_architecture`), never a network.
    reads_network: ClassVar[bool] = True
    #: Raised whenever a change makes the proxy score the same student differently: the version is part of
    #: every cached score's key, and score packs of another version are refused.
    version: ClassVar[int] = 1

    def score_architecture(self, space: SearchSpace, arch: Any, *, dataset: str, seed: int) -> float | None:
        """The score read off the architecture alone, where the proxy allows (e.g. its exact cost): the scorer
        then builds no network. None (the default): the scorer builds the student and calls :meth:`score`."""
        return None

    def prepare_teacher(self, teacher: FeatureNetwork, inputs: ProxyInputs) -> Any:
        """Teacher-side work shared by every student of a batch (e.g. teacher features)."""
        return None

    def score_batch(self, students: StudentBatch, inputs: ProxyInputs) -> torch.Tensor | None:
        """Every student's score as one K-vector left on the device (no host sync), or None where the proxy
        has no batched form. It must equal :meth:`score` of each student to rounding; a student whose value
        is not finite is scored again by :meth:`score`, which says why. Only ``feature_only`` proxies have one."""
        return None

    @abc.abstractmethod
    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        """The student's score on ``inputs``; higher means a better student."""
