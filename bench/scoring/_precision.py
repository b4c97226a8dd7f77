"""Numeric precision of scores: TF32 off by default, so a GPU's scores are float32 scores.

PyTorch lets cuDNN convolutions run in TF32 by default on GPUs that have it, which changes scores in
their fourth significant digit; scoring turns it off (``fp32``) unless ``tf32`` is asked for, and the
precision is part of every score's key. The flags are set only for the duration of a ``with`` block and
restored after, so nothing global outlives a scoring call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def numeric_precision(precision: str, device: torch.device) -> Iterator[None]:
    """Run the block with TF32 allowed exactly when ``precision`` is ``tf32`` (CUDA devices; a no-op elsewhere)."""
    if device.type != "cuda":
        yield
        return
    allow = precision == "tf32"
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
