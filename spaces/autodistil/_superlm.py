"""SuperLM: one weight-sharing network per sub-space (AutoDistil, Xu et al. 2022).

A SuperLM has the shape of its sub-space's largest student; every student of the sub-space runs as its
sub-network (leading rows and columns, layers kept evenly) and inherits those weights. Training
(``bench.lm``) samples students by the sandwich rule; scoring (the ``superlm`` proxy) reads a checkpoint
from :func:`checkpoint_path`.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._arch import (
    SPACE_PREFIX,
    SUBSPACES,
    UNION_SIZE,
    Grid,
    GridUnion,
    StudentArch,
    grid_for,
    parse_arch_str,
    to_arch_str,
)
from ._network import TransformerStudent
from ._slicing import load_sliced, slice_state

SUPERLM_DIR_ENV = "BENCH_SUPERLM_DIR"


def grid_of(space: str) -> Grid | GridUnion:
    """The grid of ``autodistil-<base|small|tiny|all>``; ValueError listing them otherwise."""
    key = space.removeprefix(SPACE_PREFIX)
    if not space.startswith(SPACE_PREFIX) or (key not in SUBSPACES and key != UNION_SIZE):
        valid = ", ".join(SPACE_PREFIX + k for k in (*SUBSPACES, UNION_SIZE))
        raise ValueError(f"{space!r} is not an AutoDistil space. Valid choices: {valid}")
    return grid_for(key)


class SuperLM(TransformerStudent):
    """The sub-space's largest student, run as any of its students through ``forward_features(x, arch=...)``."""

    def __init__(self, space: str) -> None:
        grid = grid_of(space)
        super().__init__(grid.largest, num_classes=2)
        self.space = space
        self.grid = grid

    @classmethod
    def from_teacher(cls, space: str, teacher_state: Mapping[str, torch.Tensor], teacher_layers: int) -> SuperLM:
        """A SuperLM initialised by slicing the teacher (its classifier, unused by distillation, stays random)."""
        net = cls(space)
        load_sliced(net, teacher_state, teacher_layers)
        return net

    def sub_network(self, arch: StudentArch, num_classes: int = 2) -> TransformerStudent:
        """A standalone student of shape ``arch`` with the weights it inherits from this SuperLM."""
        self.check_sub_arch(arch)
        student = TransformerStudent(arch, num_classes)
        self.inherit(student)
        return student

    def inherit(self, student: TransformerStudent) -> TransformerStudent:
        """Copy into ``student`` (any classifier) the weights it inherits; returns it."""
        self.check_sub_arch(student.arch)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("classifier.")}
        sliced = slice_state(state, self.arch.layers, student.arch)
        device = next(student.parameters()).device
        missing, unexpected = student.load_state_dict({k: v.to(device) for k, v in sliced.items()}, strict=False)
        if [k for k in missing if not k.startswith("classifier.")] or unexpected:
            raise ValueError(f"SuperLM weights do not fit {student!r}")
        return student


def sandwich(grid: Grid | GridUnion, rng: random.Random, n_random: int = 2) -> list[StudentArch]:
    """The sandwich rule: the largest and the smallest student, then ``n_random`` drawn uniformly."""
    archs = grid.archs()
    return [grid.largest, grid.smallest, *(rng.choice(archs) for _ in range(n_random))]


def superlm_dir() -> Path:
    """Where SuperLM checkpoints live: ``$BENCH_SUPERLM_DIR``, else ``results/superlm``."""
    return Path(os.environ.get(SUPERLM_DIR_ENV) or "results/superlm").expanduser()


def checkpoint_path(space: str, root: str | os.PathLike | None = None) -> Path:
    grid_of(space)
    return Path(root).expanduser() if root is not None else superlm_dir() / space / "superlm.pt"


def load_superlm(path: str | os.PathLike, space: str | None = None) -> tuple[SuperLM, dict[str, Any]]:
    """The SuperLM of a checkpoint and its metadata (step, settings); a fresh copy on each call."""
    path = Path(path)
    if not path.is_file():
        hint = f"; train it with: bench superlm train --space {space}" if space else ""
        raise FileNotFoundError(f"SuperLM checkpoint {path} does not exist{hint}")
    stat = path.stat()
    state, meta = _read_checkpoint(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if space is not None and meta["space"] != space:
        raise ValueError(f"SuperLM checkpoint {path} is for {meta['space']!r}, not {space!r}")
    net = SuperLM(meta["space"])
    if to_arch_str(net.arch) != meta["arch"]:
        raise ValueError(f"SuperLM checkpoint {path} has shape {meta['arch']}, expected {to_arch_str(net.arch)}")
    net.load_state_dict(state)
    return net.eval(), meta


@functools.lru_cache(maxsize=4)
def _read_checkpoint(path: str, mtime_ns: int, size: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    # Keyed by modification time and size too, so a checkpoint rewritten by training is read again.
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "model" not in data or "space" not in data:
        raise ValueError(f"{path} is not a SuperLM checkpoint (no 'model' and 'space' entries)")
    parse_arch_str(data["arch"])
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer")}
    return data["model"], meta
