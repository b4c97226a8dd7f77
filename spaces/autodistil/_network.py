"""A BERT encoder whose every dimension can be sliced: one class for students, the teacher and SuperLMs.

Module names mirror Hugging Face's ``BertModel`` (``embeddings.word_embeddings``, ``encoder.layer.N.
attention.self.query``, ...), so the teacher's state dict loads as it is. ``forward_features`` runs the
network at its own size, or, given ``arch``, as the sub-network that keeps the leading rows and columns of
every weight and the evenly spread layers of :func:`kept_layers`: that is how a SuperLM runs each student
with shared weights, and how a student is sliced out of the teacher (``_slicing``), so the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spaces._base import Cost
from spaces._features import FeatureNetwork, Features

from ._arch import (
    HEAD_SIZE,
    LAYER_NORM_EPS,
    MAX_POSITIONS,
    PAD_ID,
    SEQ_LEN,
    TYPE_VOCAB_SIZE,
    VOCAB_SIZE,
    StudentArch,
    check_arch,
    kept_layers,
    to_arch_str,
)


@dataclass
class TransformerFeatures(Features):
    """:class:`Features` of a Transformer plus what its proxies and distillation read: the last layer's
    query, key and value projections (``B x T x heads*32`` each), its attention probabilities
    (``B x heads x T x T``) and the mask of real (non-padding) tokens (``B x T``)."""

    qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = ()  # type: ignore[assignment]
    attention: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def _linear(layer: nn.Linear, x: torch.Tensor, out: int, inp: int) -> torch.Tensor:
    bias = layer.bias[:out] if layer.bias is not None else None
    return F.linear(x, layer.weight[:out, :inp], bias)


def _layer_norm(norm: nn.LayerNorm, x: torch.Tensor, width: int) -> torch.Tensor:
    return F.layer_norm(x, (width,), norm.weight[:width], norm.bias[:width], norm.eps)


class _Embeddings(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB_SIZE, hidden, padding_idx=PAD_ID)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, hidden)
        self.token_type_embeddings = nn.Embedding(TYPE_VOCAB_SIZE, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, attention: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, attention)
        self.key = nn.Linear(hidden, attention)
        self.value = nn.Linear(hidden, attention)


class _Output(nn.Module):
    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inp, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)


class _Attention(nn.Module):
    def __init__(self, hidden: int, attention: int) -> None:
        super().__init__()
        self.self = _SelfAttention(hidden, attention)
        self.output = _Output(attention, hidden)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, intermediate)


class _Layer(nn.Module):
    def __init__(self, arch: StudentArch) -> None:
        super().__init__()
        self.attention = _Attention(arch.hidden, arch.attention)
        self.intermediate = _Intermediate(arch.hidden, arch.intermediate)
        self.output = _Output(arch.intermediate, arch.hidden)


class _Encoder(nn.Module):
    def __init__(self, arch: StudentArch) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(arch) for _ in range(arch.layers))


class _Pooler(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class TransformerStudent(FeatureNetwork):
    """BERT of shape ``arch`` (post-LayerNorm, exact GELU, no dropout) with a pooler and a classifier.

    The input is a ``B x T`` tensor of token ids; padding (id 0) is masked out of attention.
    ``token_types`` (``B x T``, 0 or 1) marks the second sentence of a pair. ``embedding`` is the pooled
    [CLS] vector (BERT's pooler) and ``logits`` the classifier's output on it.
    """

    def __init__(self, arch: StudentArch, num_classes: int = 2) -> None:
        super().__init__()
        self.arch = check_arch(arch)
        self.num_classes = num_classes
        #: The space that built it, where a space did (``superlm`` scores it with that space's SuperLM).
        self.space_name: str | None = None
        self.embeddings = _Embeddings(arch.hidden)
        self.encoder = _Encoder(arch)
        self.pooler = _Pooler(arch.hidden)
        self.classifier = nn.Linear(arch.hidden, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BERT's initialisation: N(0, 0.02) weights and embeddings, zero biases, LayerNorm 1 and 0."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    module.weight.normal_(0.0, 0.02)
                    if isinstance(module, nn.Linear) and module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def __repr__(self) -> str:
        return f"TransformerStudent({to_arch_str(self.arch)}, num_classes={self.num_classes})"

    def check_sub_arch(self, arch: StudentArch) -> StudentArch:
        """``arch`` if it fits inside this network; ValueError naming the dimension otherwise."""
        mine = self.arch
        for what in ("layers", "hidden", "heads", "intermediate"):
            if getattr(arch, what) > getattr(mine, what):
                raise ValueError(
                    f"student {to_arch_str(arch)} does not fit in network {to_arch_str(mine)}: "
                    f"{what} {getattr(arch, what)} > {getattr(mine, what)}"
                )
        return arch

    def forward_features(
        self,
        x: torch.Tensor,
        token_types: torch.Tensor | None = None,
        *,
        arch: StudentArch | None = None,
    ) -> TransformerFeatures:
        if x.dtype not in (torch.int32, torch.int64) or x.dim() != 2:
            raise ValueError(f"a Transformer student takes a B x T tensor of token ids, got {x.dtype} {tuple(x.shape)}")
        sub = self.check_sub_arch(arch) if arch is not None else self.arch
        h, a, inter = sub.hidden, sub.attention, sub.intermediate
        batch, length = x.shape
        emb = self.embeddings
        types = torch.zeros_like(x) if token_types is None else token_types
        hidden = (
            emb.word_embeddings.weight[:, :h][x]
            + emb.position_embeddings.weight[:length, :h]
            + emb.token_type_embeddings.weight[:, :h][types]
        )
        hidden = _layer_norm(emb.LayerNorm, hidden, h)
        mask = x != PAD_ID
        # Additive key mask, as BERT does it: the dtype's most negative value on padding.
        key_bias = (~mask)[:, None, None, :].to(hidden.dtype) * torch.finfo(hidden.dtype).min
        stages: list[torch.Tensor] = []
        qkv: tuple[torch.Tensor, ...] = ()
        probs = None
        for index in kept_layers(sub.layers, self.arch.layers):
            layer = self.encoder.layer[index]
            attn = layer.attention
            q = _linear(attn.self.query, hidden, a, h)
            k = _linear(attn.self.key, hidden, a, h)
            v = _linear(attn.self.value, hidden, a, h)
            qkv = (q, k, v)

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.view(batch, length, sub.heads, HEAD_SIZE).transpose(1, 2)

            scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(HEAD_SIZE) + key_bias
            probs = scores.softmax(dim=-1)
            context = (probs @ heads(v)).transpose(1, 2).reshape(batch, length, a)
            hidden = _layer_norm(attn.output.LayerNorm, _linear(attn.output.dense, context, h, a) + hidden, h)
            up = F.gelu(_linear(layer.intermediate.dense, hidden, inter, h))
            hidden = _layer_norm(layer.output.LayerNorm, _linear(layer.output.dense, up, h, inter) + hidden, h)
            stages.append(hidden)
        pooled = torch.tanh(_linear(self.pooler.dense, hidden[:, 0], h, h))
        logits = _linear(self.classifier, pooled, self.classifier.out_features, h)
        return TransformerFeatures(
            stages=stages,
            pre_pool=hidden,
            embedding=pooled,
            logits=logits,
            qkv=qkv,  # type: ignore[arg-type]
            attention=probs,
            mask=mask,
        )

    def forward(self, x: torch.Tensor, token_types: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, token_types).logits


def embedding_params(arch: StudentArch) -> int:
    """Parameters of the embeddings (word, position, token type, their LayerNorm)."""
    return (VOCAB_SIZE + MAX_POSITIONS + TYPE_VOCAB_SIZE) * arch.hidden + 2 * arch.hidden


def non_embedding_params(arch: StudentArch) -> int:
    """Parameters of the Transformer layers: what the embeddings' vocabulary-sized table does not dominate."""
    h, a, i = arch.hidden, arch.attention, arch.intermediate
    per_layer = 3 * (h * a + a) + (a * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return arch.layers * per_layer


def network_cost(arch: StudentArch, num_classes: int, seq_len: int = SEQ_LEN) -> Cost:
    """Parameters and FLOPs (2 per multiply-add, as torch's ``FlopCounterMode`` counts the matrix products)
    of one sequence of ``seq_len`` tokens, with the pooler and classifier."""
    h, a, i, t = arch.hidden, arch.attention, arch.intermediate, seq_len
    head = (h * h + h) + (h * num_classes + num_classes)
    params = embedding_params(arch) + non_embedding_params(arch) + head
    per_layer = 2 * t * (3 * h * a + a * h + 2 * h * i) + 2 * 2 * t * t * a
    flops = arch.layers * per_layer + 2 * (h * h + h * num_classes)
    return Cost(params=params, flops=flops)
