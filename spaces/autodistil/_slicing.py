"""Slicing a network into a smaller student: leading rows and columns of every weight, layers kept evenly.

Works on state dicts in the teacher's (Hugging Face ``BertModel``) naming, which
:class:`~spaces.autodistil.TransformerStudent` shares, so the same function slices the teacher into a
student and a SuperLM into one of its sub-networks (weight inheritance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ._arch import StudentArch, kept_layers
from ._network import TransformerStudent

_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")


def _sliced_shape(name: str, arch: StudentArch) -> tuple[int, ...] | None:
    """The leading block of parameter ``name`` (layer prefix removed) that ``arch`` keeps; None: not sliced."""
    h, a, i = arch.hidden, arch.attention, arch.intermediate
    if name.startswith("embeddings.") and name.endswith("_embeddings.weight"):
        return (-1, h)
    shapes = {
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
        "attention.self.query.weight": (a, h),
        "attention.self.query.bias": (a,),
        "attention.self.key.weight": (a, h),
        "attention.self.key.bias": (a,),
        "attention.self.value.weight": (a, h),
        "attention.self.value.bias": (a,),
        "attention.output.dense.weight": (h, a),
        "attention.output.dense.bias": (h,),
        "attention.output.LayerNorm.weight": (h,),
        "attention.output.LayerNorm.bias": (h,),
        "intermediate.dense.weight": (i, h),
        "intermediate.dense.bias": (i,),
        "output.dense.weight": (h, i),
        "output.dense.bias": (h,),
        "output.LayerNorm.weight": (h,),
        "output.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h),
        "pooler.dense.bias": (h,),
    }
    return shapes.get(name)


def slice_state(state: Mapping[str, torch.Tensor], source_layers: int, arch: StudentArch) -> dict[str, torch.Tensor]:
    """The state dict of ``arch`` cut out of ``state`` (a network of ``source_layers`` layers).

    Layer ``j`` of the student is layer ``kept_layers(arch.layers, source_layers)[j]`` of the source;
    every weight keeps its leading rows and columns. Entries the student has no counterpart for (the
    source's dropped layers, a classifier) are left out; keys in neither naming raise ValueError.
    """
    keep = kept_layers(arch.layers, source_layers)
    sliced: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.startswith("classifier.") or key.endswith("position_ids"):
            continue
        match = _LAYER_RE.match(key)
        name = match[2] if match else key
        shape = _sliced_shape(name, arch)
        if shape is None:
            raise ValueError(f"cannot slice parameter {key!r}: not part of a BERT encoder")
        if any(s > d for s, d in zip(shape, tensor.shape) if s != -1):
            raise ValueError(f"cannot slice {key!r} of shape {tuple(tensor.shape)} to {shape}: the source is smaller")
        block = tensor[tuple(slice(None) if s == -1 else slice(0, s) for s in shape)]
        if match:
            source = int(match[1])
            if source not in keep:
                continue
            key = f"encoder.layer.{keep.index(source)}.{name}"
        sliced[key] = block.detach().clone()
    return sliced


def load_sliced(student: TransformerStudent, state: Mapping[str, torch.Tensor], source_layers: int) -> None:
    """Load into ``student`` its slice of ``state``; everything but the classifier must be covered."""
    sliced = slice_state(state, source_layers, student.arch)
    missing, unexpected = student.load_state_dict(sliced, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise ValueError(f"sliced state does not fit {student!r}: missing {missing[:4]}, unexpected {unexpected[:4]}")


def sliced_student(
    state: Mapping[str, torch.Tensor], source_layers: int, arch: StudentArch, num_classes: int = 2
) -> TransformerStudent:
    """A new student of shape ``arch`` initialised from its slice of ``state`` (classifier: BERT's init)."""
    student = TransformerStudent(arch, num_classes)
    load_sliced(student, state, source_layers)
    return student
