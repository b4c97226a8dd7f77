"""A training recipe: everything that determines a trained network besides its architecture.

A recipe is hashed, and the hash travels with every result made from it (checkpoints, the distillation
ground-truth table, the tables built on that), so a number always says how it was made.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

#: Training objectives: cross-entropy alone, or with Hinton's KD and DisWOT-style feature terms.
LOSSES = ("ce", "kd", "kd+diswot", "kd+sp", "kd+ickd")


def _flag(field: str) -> str:
    return field.replace("_", "-")


@dataclass(frozen=True)
class Recipe:
    """SGD with Nesterov momentum and a cosine schedule, random-crop + flip augmentation: the standard CIFAR
    recipe (NAS-Bench-201 trains its cells with it: lr 0.1, weight decay 5e-4, batch 256, 200 epochs).

    ``loss`` is ``ce`` for vanilla training; the ``kd*`` losses need a teacher and weigh
    ``alpha * KD(T=temperature) + (1 - alpha) * CE + beta * feature term``. ``train_images`` > 0 trains on a
    seeded subset (tests and quick studies); ``test_images`` > 0 evaluates on the first images of the test
    split. ``seed`` draws the initialisation, the data order and the augmentation.
    """

    dataset: str = "cifar10"
    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    augment: bool = True
    loss: str = "ce"
    temperature: float = 4.0
    alpha: float = 0.9
    beta: float = 1.0
    seed: int = 0
    init: str = "default"
    train_images: int = 0
    test_images: int = 0
    teacher: str | None = None
    teacher_weights: str | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}. Valid choices: {', '.join(LOSSES)}")
        if self.loss != "ce" and not self.teacher:
            raise ValueError(f"loss {self.loss!r} distils from a teacher: name one (a checkpoint of bench train)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{_flag(name)} must be positive, got {getattr(self, name)}")
        for name in ("train_images", "test_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{_flag(name)} must be 0 (all images) or positive, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "momentum", "temperature", "alpha", "beta"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"--{_flag(name)} must be a finite number, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        for name in ("weight_decay", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{_flag(name)} must be 0 or positive, got {getattr(self, name)}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum lies in [0, 1), got {self.momentum}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"--alpha weighs KD against cross-entropy and lies in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be positive, got {self.temperature}")

    @property
    def distils(self) -> bool:
        return self.loss != "ce"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def key_fields(self) -> dict[str, object]:
        """What the result depends on. Teacher weights are named by content, not by path."""
        fields_ = self.as_dict()
        if self.teacher_weights:
            path = Path(self.teacher_weights)
            fields_["teacher_weights"] = hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.is_file() else None
        if not self.distils:
            # Vanilla training ignores the distillation settings, so they must not split its results.
            for name in ("temperature", "alpha", "beta", "teacher", "teacher_weights"):
                fields_.pop(name)
        return fields_

    def hash(self) -> str:
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        # Computed once: the key reads (and hashes) the teacher's weight file.
        return hashlib.sha1(json.dumps(self.key_fields(), sort_keys=True).encode()).hexdigest()[:16]

    def vanilla(self) -> Recipe:
        """The same recipe without distillation (the baseline every KD result is compared with)."""
        return replace(self, loss="ce", teacher=None, teacher_weights=None)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown recipe fields {', '.join(unknown)}. Valid: {', '.join(sorted(known))}")
        return cls(**data)  # type: ignore[arg-type]
