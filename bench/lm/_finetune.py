"""Fine-tuning a student on a GLUE task and scoring it on the dev set or on a held-out part of training.

A task's training set is split once (a fixed seeded permutation) into ``fit`` (90 %) and ``select``
(10 %): the fine-tuning protocol (:mod:`._protocol`) chooses the learning rate on ``select`` after training
on ``fit``, so the dev set is never used to choose anything.
"""

from __future__ import annotations

import copy
import functools
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spaces.autodistil import PAD_ID, TransformerStudent

from ._batches import encode_pairs
from ._glue import Example, check_task, glue_metrics, read_task
from ._training import warmup_lr

#: ``train`` and ``dev`` are GLUE's splits; ``fit`` and ``select`` partition ``train`` (see the module).
PARTS = ("train", "dev", "fit", "select")
SELECT_SHARE = 0.1
SELECT_SEED = 0


@dataclass(frozen=True)
class FinetuneSettings:
    """A fixed budget: ``steps`` steps of ``batch_size`` training examples of at most ``seq_len`` tokens;
    ``dev_limit`` evaluates on the first examples of the dev set (and of ``select``) only (None: all)."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-4
    seq_len: int = 64
    seed: int = 0
    dev_limit: int | None = None

    def check(self) -> FinetuneSettings:
        for name in ("steps", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"fine-tuning {name} must be positive, got {getattr(self, name)}")
        if self.dev_limit is not None and self.dev_limit < 1:
            raise ValueError(f"--dev-limit must be positive, got {self.dev_limit}")
        if self.lr <= 0:
            raise ValueError(f"fine-tuning learning rate must be positive, got {self.lr}")
        return self


@dataclass(frozen=True)
class FinetuneResult:
    task: str
    metrics: dict[str, float]
    train_seconds: float
    eval_seconds: float
    #: How many evaluated examples were predicted as class 0 and as class 1.
    predicted: tuple[int, int] = (0, 0)

    @property
    def constant(self) -> bool:
        """True where every evaluated example got the same class: a majority-class score, not a model's."""
        return min(self.predicted) == 0


def _encode(examples: list[Example], seq_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, types = encode_pairs([e.text_a for e in examples], [e.text_b for e in examples], seq_len)
    return ids, types, torch.tensor([e.label for e in examples], dtype=torch.long)


def part_rows(n: int, part: str) -> np.ndarray:
    """Row indices of ``fit`` or ``select`` among ``n`` training examples (disjoint, covering all, sorted)."""
    order = np.random.default_rng(SELECT_SEED).permutation(n)
    cut = max(1, round(SELECT_SHARE * n))
    return np.sort(order[:cut] if part == "select" else order[cut:])


@functools.lru_cache(maxsize=32)
def encoded_split(
    task: str, part: str, seq_len: int, root: str | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, token types and labels of a whole split or part, tokenised once per process."""
    if part not in PARTS:
        raise ValueError(f"unknown GLUE part {part!r}. Valid choices: {', '.join(PARTS)}")
    if part in ("fit", "select"):
        ids, types, labels = encoded_split(task, "train", seq_len, root)
        rows = torch.from_numpy(part_rows(len(ids), part))
        return ids[rows], types[rows], labels[rows]
    return _encode(read_task(task, part, root), seq_len)


def _trimmed(ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(int((ids != PAD_ID).sum(dim=1).max()), 1)
    return ids[:, :length], types[:, :length]


def _key(root: str | os.PathLike | None) -> str | None:
    return str(root) if root is not None else None


def train_classifier(
    student: TransformerStudent,
    task: str,
    settings: FinetuneSettings,
    *,
    root: str | os.PathLike | None = None,
    part: str = "train",
) -> tuple[TransformerStudent, float]:
    """A fine-tuned copy of ``student`` (a fresh two-way classifier) trained on ``part``, and the seconds."""
    check_task(task)
    settings.check()
    device = next(student.parameters()).device
    net = copy.deepcopy(student)
    gen = torch.Generator().manual_seed(settings.seed)
    net.classifier = nn.Linear(net.arch.hidden, 2)
    with torch.no_grad():
        net.classifier.weight.normal_(0.0, 0.02, generator=gen)
        net.classifier.bias.zero_()
    net.classifier.to(device)
    train_ids, train_types, train_labels = encoded_split(task, part, settings.seq_len, _key(root))
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=0.01)
    start = time.perf_counter()
    net.train()
    for step in range(settings.steps):
        rows = torch.randint(len(train_ids), (settings.batch_size,), generator=gen)
        ids, types = _trimmed(train_ids[rows], train_types[rows])
        for group in optimizer.param_groups:
            group["lr"] = warmup_lr(step, settings.steps, settings.lr)
        loss = F.cross_entropy(net(ids.to(device), types.to(device)), train_labels[rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
    return net.eval(), time.perf_counter() - start


def score_classifier(
    net: TransformerStudent,
    task: str,
    settings: FinetuneSettings,
    *,
    root: str | os.PathLike | None = None,
    part: str = "dev",
    train_seconds: float = 0.0,
) -> FinetuneResult:
    """The task's metrics of a fine-tuned ``net`` on the first ``settings.dev_limit`` examples of ``part``."""
    device = next(net.parameters()).device
    ids_all, types_all, labels = (t[: settings.dev_limit] for t in encoded_split(task, part, settings.seq_len,
                                                                              _key(root)))  # fmt: skip
    start = time.perf_counter()
    net.eval()
    predictions: list[int] = []
    with torch.no_grad():
        for first in range(0, len(ids_all), 128):
            ids, types = _trimmed(ids_all[first : first + 128], types_all[first : first + 128])
            predictions.extend(net(ids.to(device), types.to(device)).argmax(dim=1).tolist())
    metrics = glue_metrics(task, predictions, labels.tolist())
    counts = (predictions.count(0), predictions.count(1))
    return FinetuneResult(task, metrics, train_seconds, time.perf_counter() - start, counts)


def finetune(
    student: TransformerStudent,
    task: str,
    settings: FinetuneSettings,
    *,
    root: str | os.PathLike | None = None,
    train_part: str = "train",
    eval_part: str = "dev",
) -> FinetuneResult:
    """Fine-tune a copy of ``student`` (a fresh two-way classifier) on ``task`` and score it on the dev set."""
    net, seconds = train_classifier(student, task, settings, root=root, part=train_part)
    return score_classifier(net, task, settings, root=root, part=eval_part, train_seconds=seconds)


def majority_result(task: str, settings: FinetuneSettings, *, root: str | os.PathLike | None = None,
                    part: str = "dev") -> FinetuneResult:  # fmt: skip
    """The metrics of predicting the majority class of ``fit`` for every example of ``part``."""
    check_task(task)
    _, _, fit_labels = encoded_split(task, "fit", settings.seq_len, _key(root))
    majority = int(fit_labels.float().mean() > 0.5)
    labels = encoded_split(task, part, settings.seq_len, _key(root))[2][: settings.dev_limit].tolist()
    predictions = [majority] * len(labels)
    counts = (predictions.count(0), predictions.count(1))
    return FinetuneResult(task, glue_metrics(task, predictions, labels), 0.0, 0.0, counts)


def glue_average(results: dict[str, dict[str, float]]) -> float:
    """Mean over tasks of each task's main metric (the first: SST-2 acc, CoLA MCC, MRPC F1, RTE acc)."""
    return float(np.mean([next(iter(m.values())) for m in results.values()]))
