"""Train one or many networks under one recipe on the same batches: vanilla or distilled from a teacher.

Networks that a space can pack (:meth:`spaces.SearchSpace.packed`) train as one module; others step one
after another on each batch. Either way the teacher runs once per batch for all of them, the data and its
augmentation live on the training device, and an epoch's end writes a checkpoint from which an interrupted
run resumes to the same state as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from spaces import FeatureNetwork, Features, PackedNetwork

from ..files import load_torch
from ._data import DeviceImages
from ._losses import objective
from ._recipe import Recipe

CHECKPOINT_FORMAT = 1
PROGRESS_EVERY = 10


@dataclass
class EpochLog:
    epoch: int
    seconds: float
    lr: float
    train_loss: list[float]
    train_acc: list[float]
    test_acc: list[float]
    #: The epoch's training alone (``seconds`` includes the evaluation).
    train_seconds: float = 0.0


@dataclass
class TrainResult:
    """Per-network final test accuracy (%) and the epoch logs; ``seconds`` is training time in this run."""

    test_acc: list[float]
    history: list[EpochLog] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0
    #: Network index -> the first epoch whose training loss was not finite: that network diverged, its
    #: accuracy is NaN and means nothing (see :meth:`failures`).
    diverged: dict[int, int] = field(default_factory=dict)

    def failures(self) -> dict[int, str]:
        """Network index -> why it has no result, for the networks that diverged."""
        return {i: f"training diverged: the loss was not finite from epoch {e}" for i, e in self.diverged.items()}


class _Sequential(nn.ModuleList):
    """The fallback group: networks stepped one after another on each batch."""

    def forward_features(self, images: torch.Tensor) -> list[Features]:
        return [net.forward_features(images) for net in self]

    def unpack(self) -> list[FeatureNetwork]:
        return list(self)  # type: ignore[arg-type]


def _autocast(device: torch.device, amp: bool):
    if not amp or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


@torch.no_grad()
def evaluate(
    networks: Sequence[nn.Module], data: DeviceImages, *, batch_size: int = 500, amp: bool = False
) -> list[float]:
    """Top-1 accuracy (%) of each network on ``data``, BatchNorm on running statistics."""
    correct = [0] * len(networks)
    for net in networks:
        net.eval()
    for images, labels in data.batches(batch_size):
        with _autocast(data.device, amp):
            for i, net in enumerate(networks):
                correct[i] += int((net(images).argmax(1) == labels).sum())
    return [100.0 * c / len(data) for c in correct]


def _save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    networks: Sequence[FeatureNetwork],
    recipe: Recipe,
    *,
    train_data: DeviceImages,
    test_data: DeviceImages,
    teacher: FeatureNetwork | None = None,
    pack: Callable[[Sequence[FeatureNetwork]], PackedNetwork | None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    amp: bool = False,
    channels_last: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``networks`` (already on ``train_data.device``) under ``recipe``; see the module docstring.

    ``stop_after`` ends the run after that many epochs of this call (the checkpoint stays, a later call
    resumes); ``progress(step, total_steps, stats)`` is called after each step.
    """
    if recipe.distils and teacher is None:
        raise ValueError(f"loss {recipe.loss!r} needs a teacher")
    device = train_data.device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for net in networks:
        net.to(device=device, memory_format=memory_format)
    packed = pack(networks) if pack is not None and len(networks) > 1 else None
    # Either way one module whose parameters are the networks' and whose forward gives each one's features.
    group: nn.Module = packed if packed is not None else _Sequential(networks)  # type: ignore[assignment]
    group.to(device=device, memory_format=memory_format)
    if teacher is not None:
        teacher.to(device=device, memory_format=memory_format).eval()

    drop_last = len(train_data) >= recipe.batch_size
    steps_per_epoch = (
        len(train_data) // recipe.batch_size if drop_last else math.ceil(len(train_data) / recipe.batch_size)
    )
    total_steps = steps_per_epoch * recipe.epochs
    optimizer = torch.optim.SGD(
        group.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    # A CPU generator draws the data order and the augmentation, so a seed means the same batches on any device.
    generator = torch.Generator().manual_seed(recipe.seed)
    result = TrainResult(test_acc=[])
    path = Path(checkpoint) if checkpoint else None
    start = 0
    if path is not None and path.is_file():
        state = load_torch(path, "training checkpoint", map_location=device)
        if not isinstance(state, dict) or state.get("recipe") != recipe.hash() or state.get("k") != len(networks):
            raise ValueError(
                f"checkpoint {path} belongs to another run (recipe {state.get('recipe')}, {state.get('k')} networks); "
                f"this run is recipe {recipe.hash()} with {len(networks)}: remove it or choose another path"
            )
        group.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        result.history = [EpochLog(**log) for log in state["history"]]
        start = result.resumed_from = state["epoch"]

    k = len(networks)
    began = time.perf_counter()
    for epoch in range(start, recipe.epochs):
        if stop_after is not None and epoch - start >= stop_after:
            break
        tic = time.perf_counter()
        group.train()
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device)
        seen = 0
        for step, (images, labels) in enumerate(
            train_data.batches(recipe.batch_size, generator=generator, augment=recipe.augment, drop_last=drop_last)
        ):
            images = images.contiguous(memory_format=memory_format)
            with _autocast(device, amp):
                teacher_features = None
                if teacher is not None and recipe.distils:
                    with torch.no_grad():
                        teacher_features = teacher.forward_features(images)
                features = group.forward_features(images)
                losses = torch.stack([objective(recipe, f, teacher_features, labels) for f in features])
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                loss_sum += losses.detach() * len(labels)
                correct += torch.stack([(f.logits.argmax(1) == labels).sum() for f in features])
            seen += len(labels)
            # Reading a value back waits for the device: only every few steps, not every step.
            if progress is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps_per_epoch):
                stats = {
                    "epoch": epoch + 1,
                    "loss": float(loss_sum.mean()) / seen,
                    "acc": 100.0 * float(correct.mean()) / seen,
                }
                progress(epoch * steps_per_epoch + step + 1, total_steps, stats)
        # Reading the epoch's statistics waits for the device, so the clock then holds training alone.
        train_loss = (loss_sum / max(seen, 1)).tolist()
        train_acc = (100 * correct / max(seen, 1)).tolist()
        train_seconds = time.perf_counter() - tic
        nets = group.unpack()
        test_acc = evaluate(nets, test_data, amp=amp)
        result.history.append(
            EpochLog(
                epoch=epoch + 1,
                seconds=time.perf_counter() - tic,
                lr=scheduler.get_last_lr()[0],
                train_loss=train_loss,
                train_acc=train_acc,
                test_acc=test_acc,
                train_seconds=train_seconds,
            )
        )
        if path is not None:
            _save_atomic(
                {
                    "format": CHECKPOINT_FORMAT,
                    "recipe": recipe.hash(),
                    "k": k,
                    "epoch": epoch + 1,
                    "module": group.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "history": [vars(log) for log in result.history],
                },
                path,
            )
    group.unpack()
    result.seconds = time.perf_counter() - began
    result.test_acc = result.history[-1].test_acc if result.history else [float("nan")] * k
    for log in result.history:
        for i, loss in enumerate(log.train_loss):
            if not math.isfinite(loss) and i not in result.diverged:
                result.diverged[i] = log.epoch
    result.test_acc = [float("nan") if i in result.diverged else acc for i, acc in enumerate(result.test_acc)]
    return result
