"""Proxies for Transformer students (the AutoDistil spaces), all against the teacher on one token batch.

- ``superlm`` (AutoDistil, Xu et al. 2022): minus the held-out relation-distillation loss of the student
  with the weights it inherits from its sub-space's trained SuperLM (``bench superlm train``); search
  without retraining. The checkpoint is read from ``$BENCH_SUPERLM_DIR/<space>/superlm.pt`` (default
  ``results/superlm``); score-cache keys of these spaces include the checkpoint's content hash.
- ``nonembed_params``: parameters outside the embeddings (Transformer size without the vocabulary table).
- ``minilm_init``: minus the same relation loss (Q-Q, K-K, V-V of the last layer, 12 relation heads)
  for the randomly initialised student, DisWOT's idea of similarity at initialisation, with MiniLM's terms.
- ``lm_sample_relation``: DisWOT's relation term on the mean-pooled last hidden states (B x B Gram
  matrices, rows scaled to unit norm), random student against the teacher.
- ``lm_attention``: minus the KL divergence between the head-averaged last-layer attention maps.
- ``lm_grad_norm`` and ``lm_snip``: the gradient of the relation loss at initialisation, as its L2 norm
  and as SNIP's saliency ``sum |w * g|`` over the weight matrices: label-free gradient scores.

A teacher-aware proxy here needs a Transformer teacher (``minilm-l6``, the default of these spaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from spaces import FeatureNetwork
from spaces.autodistil import (
    SPACE_PREFIX,
    SUBSPACES,
    SuperLM,
    TransformerFeatures,
    TransformerStudent,
    checkpoint_path,
    load_superlm,
    non_embedding_params,
    relation_loss,
    teacher_relations,
    to_arch_str,
)

from ._base import Proxy, ProxyError, ProxyInputs
from ._nets import finite, layer_weights, require_teacher, weight_grads
from ._registry import register_proxy
from ._similarity import relation_gram, squared_distance


def _transformer(net: FeatureNetwork, role: str) -> TransformerStudent:
    if not isinstance(net, TransformerStudent):
        raise ProxyError(f"this proxy scores Transformer students; the {role} is a {type(net).__name__}")
    return net


def _features(net: FeatureNetwork, inputs: ProxyInputs, role: str) -> TransformerFeatures:
    return _transformer(net, role).forward_features(inputs.images)


def space_of(net: TransformerStudent) -> str:
    """The space that built the student (e.g. the K=1 union), else the sub-space it belongs to (their hidden
    sizes do not overlap); ProxyError if none."""
    if net.space_name is not None:
        return net.space_name
    for size, grid in SUBSPACES.items():
        if net.arch in grid.archs():
            return SPACE_PREFIX + size
    raise ProxyError(f"student {to_arch_str(net.arch)} is in no AutoDistil sub-space")


def _mean_pooled(features: TransformerFeatures) -> torch.Tensor:
    mask = features.mask.unsqueeze(-1).to(features.pre_pool.dtype)
    return (features.pre_pool * mask).sum(dim=1) / mask.sum(dim=1)


def _head_averaged(features: TransformerFeatures) -> torch.Tensor:
    return features.attention.mean(dim=1).clamp_min(1e-12).log()


@dataclass(frozen=True)
class TeacherSide:
    """What every student is compared against, computed once per batch."""

    relations: list[torch.Tensor]
    mask: torch.Tensor
    sample_gram: torch.Tensor
    attention_log: torch.Tensor


class TransformerProxy(Proxy):
    """A proxy reading the teacher's last-layer relations, attention and hidden states on the batch."""

    needs_teacher = True
    input_kinds = ("tokens",)

    def prepare_teacher(self, teacher: FeatureNetwork, inputs: ProxyInputs) -> TeacherSide:
        with torch.no_grad():
            features = _features(teacher, inputs, "teacher")
        return TeacherSide(
            relations=teacher_relations(features.qkv, features.mask),
            mask=features.mask,
            sample_gram=relation_gram(_mean_pooled(features)),
            attention_log=_head_averaged(features),
        )

    def teacher_side(self, inputs: ProxyInputs) -> TeacherSide:
        if inputs.teacher_state is not None:
            return inputs.teacher_state
        return self.prepare_teacher(require_teacher(inputs, self.name), inputs)


@register_proxy("superlm")
class SuperLMLoss(TransformerProxy):
    description = "AutoDistil: -held-out relation distillation loss with weights inherited from the SuperLM"

    def __init__(self) -> None:
        self._nets: dict[tuple[str, int], SuperLM] = {}

    def superlm(self, space: str) -> SuperLM:
        path = checkpoint_path(space)
        if not path.is_file():
            raise ProxyError(f"no SuperLM for {space} at {path}; train one: bench superlm train --space {space}")
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key not in self._nets:
            self._nets = {key: load_superlm(path, space)[0]}  # keep one: the latest read
        return self._nets[key]

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = self.teacher_side(inputs)
        net = _transformer(student, "student")
        self.superlm(space_of(net)).inherit(net)
        with torch.no_grad():
            features = net.forward_features(inputs.images)
            loss = relation_loss(teacher.relations, features.qkv, teacher.mask)
        return -finite(loss, "SuperLM relation loss")


@register_proxy("nonembed_params")
class NonEmbeddingParams(Proxy):
    description = "parameters of the Transformer layers (without the embeddings, pooler and classifier)"
    needs_data = False
    input_kinds = ("tokens",)

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return float(non_embedding_params(_transformer(student, "student").arch))


@register_proxy("minilm_init")
class RelationAtInit(TransformerProxy):
    description = "-Q/K/V self-attention relation KL to the teacher at initialisation (MiniLMv2 terms)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = self.teacher_side(inputs)
        with torch.no_grad():
            features = _features(student, inputs, "student")
            loss = relation_loss(teacher.relations, features.qkv, teacher.mask)
        return -finite(loss, "relation loss")


@register_proxy("lm_sample_relation")
class SampleRelation(TransformerProxy):
    description = "DisWOT relation term: -distance of B x B Gram matrices of mean-pooled last hidden states"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = self.teacher_side(inputs)
        with torch.no_grad():
            gram = relation_gram(_mean_pooled(_features(student, inputs, "student")))
        b = len(inputs.images)
        return -finite(squared_distance(teacher.sample_gram, gram, b * b), "sample relation distance")


@register_proxy("lm_attention")
class AttentionMap(TransformerProxy):
    description = "-KL divergence of head-averaged last-layer attention maps, teacher to random student"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        teacher = self.teacher_side(inputs)
        with torch.no_grad():
            mine = _head_averaged(_features(student, inputs, "student"))
        mask = teacher.mask
        keys = mask[:, None, :]
        terms = torch.where(keys, teacher.attention_log.exp() * (teacher.attention_log - mine), 0.0).sum(-1)
        queries = mask.to(terms.dtype)
        return -finite((terms * queries).sum() / queries.sum(), "attention KL")


class _RelationGradient(TransformerProxy):
    def gradients(self, student: FeatureNetwork, inputs: ProxyInputs) -> tuple[list[torch.Tensor], list[Any]]:
        teacher = self.teacher_side(inputs)
        features = _features(student, inputs, "student")
        weights = [w for w in layer_weights(student) if w is not student.classifier.weight]
        loss = relation_loss(teacher.relations, features.qkv, teacher.mask)
        # The pooler does not reach the relation loss: weight_grads gives it zeros.
        return weights, weight_grads(loss, weights)


@register_proxy("lm_grad_norm")
class RelationGradNorm(_RelationGradient):
    description = "L2 norm of the relation-loss gradient w.r.t. the weight matrices at initialisation"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        _, grads = self.gradients(student, inputs)
        return finite(torch.sqrt(sum(g.pow(2).sum() for g in grads)), "gradient norm")


@register_proxy("lm_snip")
class RelationSnip(_RelationGradient):
    description = "SNIP saliency sum |w * g| of the relation loss at initialisation (label-free)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        weights, grads = self.gradients(student, inputs)
        return finite(sum((w * g).abs().sum() for w, g in zip(weights, grads)), "SNIP saliency")
