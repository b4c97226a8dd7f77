"""Fine-tuning a student on a GLUE task and scoring it on the dev set."""

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


@dataclass(frozen=True)
class FinetuneSettings:
    """A fixed budget: ``steps`` steps of ``batch_size`` training examples of at most ``seq_len`` tokens;
    ``dev_limit`` evaluates on the first examples of the dev set only (None: all of it)."""

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
        return self


@dataclass(frozen=True)
class FinetuneResult:
    task: str
    metrics: dict[str, float]
    train_seconds: float
    eval_seconds: float


def _encode(examples: list[Example], seq_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, types = encode_pairs([e.text_a for e in examples], [e.text_b for e in examples], seq_len)
    return ids, types, torch.tensor([e.label for e in examples], dtype=torch.long)


@functools.lru_cache(maxsize=16)
def encoded_split(
    task: str, split: str, seq_len: int, root: str | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, token types and labels of a whole split, tokenised once per process."""
    return _encode(read_task(task, split, root), seq_len)


def _trimmed(ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(int((ids != PAD_ID).sum(dim=1).max()), 1)
    return ids[:, :length], types[:, :length]


def finetune(
    student: TransformerStudent,
    task: str,
    settings: FinetuneSettings,
    *,
    root: str | os.PathLike | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of ``student`` (a fresh two-way classifier) on ``task`` and score it on the dev set."""
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
    key = str(root) if root is not None else None
    train_ids, train_types, train_labels = encoded_split(task, "train", settings.seq_len, key)
    dev_ids, dev_types, dev_labels = (
        t[: settings.dev_limit] for t in encoded_split(task, "dev", settings.seq_len, key)
    )
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
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    net.eval()
    predictions: list[int] = []
    with torch.no_grad():
        for first in range(0, len(dev_ids), 128):
            ids, types = _trimmed(dev_ids[first : first + 128], dev_types[first : first + 128])
            predictions.extend(net(ids.to(device), types.to(device)).argmax(dim=1).tolist())
    metrics = glue_metrics(task, predictions, dev_labels.tolist())
    return FinetuneResult(task, metrics, train_seconds, time.perf_counter() - start)


def glue_average(results: dict[str, dict[str, float]]) -> float:
    """Mean over tasks of each task's main metric (the first: SST-2 acc, CoLA MCC, MRPC F1, RTE acc)."""
    return float(np.mean([next(iter(m.values())) for m in results.values()]))
