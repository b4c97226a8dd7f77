"""Naming the device a command runs on: one check for every command, with ``auto`` meaning the GPU if any."""

from __future__ import annotations

import torch

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` as given.

    ValueError naming the valid choices for anything else, and for a CUDA device on a machine without one.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; valid choices: {DEVICE_CHOICES}") from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; valid choices: {DEVICE_CHOICES}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this machine has no CUDA device; use --device cpu")
    return device
