"""Training a SuperLM: relation distillation of four sandwich-sampled students per step, with checkpoints.

Each step draws a batch of the corpus's training split, computes the teacher's Q/K/V relations once, and
backpropagates the relation loss of the largest student, the smallest and two random ones (the sandwich
rule) through the shared weights; the gradients are averaged over the four, clipped to norm 1, and AdamW
steps with BERT's warm-up and linear decay. Batches and students are drawn from generators seeded by
``(seed, step)``, so a run resumed from a checkpoint continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from spaces.autodistil import TEACHER_ARCH, SuperLM, checkpoint_path, grid_of, sandwich, to_arch_str

from ._batches import trim
from ._corpus import TokenCorpus, check_glue_count, load_corpus
from ._teacher import teacher_network, teacher_state
from ._training import resolve_device, student_loss, teacher_targets, warmup_lr


@dataclass(frozen=True)
class SuperLMSettings:
    """What defines a SuperLM's training besides its sub-space; ``steps`` is the total budget."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    n_random: int = 2
    seed: int = 0
    seq_len: int = 128
    #: GLUE training sentences added to the generic corpus (0: none, the default; see ``bench.lm._corpus``).
    glue_sentences: int = 0

    def check(self) -> SuperLMSettings:
        for name in ("steps", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        check_glue_count(self.glue_sentences)
        if self.n_random < 0:
            raise ValueError(f"--n-random must be at least 0, got {self.n_random}")
        return self


@dataclass
class TrainResult:
    path: Path
    start_step: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        done = self.steps - self.start_step
        return done / self.seconds if self.seconds > 0 else float("nan")


def _save(path: Path, net: SuperLM, optimizer: torch.optim.Optimizer, step: int, settings: SuperLMSettings,
          history: list[float], sources: tuple[str, ...]) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "space": net.space,
        "arch": to_arch_str(net.arch),
        "step": step,
        "settings": asdict(settings),
        "losses": history,
        "corpus": list(sources),
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    # Written aside and renamed: a run killed while saving leaves the previous checkpoint whole.
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    tmp.replace(path)


def train_superlm(
    space: str,
    settings: SuperLMSettings,
    *,
    out: str | os.PathLike | None = None,
    device: str = "auto",
    resume: bool = True,
    checkpoint_every: int = 100,
    data_root: str | os.PathLike | None = None,
    corpus: TokenCorpus | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train (or resume) the SuperLM of ``space`` up to ``settings.steps`` steps; returns where it is saved."""
    grid_of(space)
    settings.check()
    if checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be positive, got {checkpoint_every}")
    dev = resolve_device(device)
    path = checkpoint_path(space, out)
    corpus = corpus or load_corpus(data_root, seq_len=settings.seq_len, glue=settings.glue_sentences)
    teacher = teacher_network().to(dev)
    # Seeded and forked: the (unused) classifier is drawn the same on every run, and the caller's RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = SuperLM.from_teacher(space, teacher_state(), TEACHER_ARCH.layers).to(dev)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    start, history = 0, []
    if resume and path.is_file():
        saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("space") != space:
            raise ValueError(f"checkpoint {path} belongs to {saved.get('space')!r}, not {space!r}")
        wanted = asdict(settings)
        changed = {k: v for k, v in saved["settings"].items() if k != "steps" and v != wanted.get(k, v)}
        if changed:
            raise ValueError(
                f"checkpoint {path} was trained with other settings ({changed}); pass them, or --no-resume to restart"
            )
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start, history = int(saved["step"]), list(saved["losses"])
    grid = net.grid
    net.train()
    begin = time.perf_counter()
    for step in range(start, settings.steps):
        gen = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
        rows = torch.randint(len(corpus.train), (settings.batch_size,), generator=gen)
        ids = trim(corpus.train[rows]).long().to(dev)
        targets, mask = teacher_targets(teacher, ids)
        archs = sandwich(grid, random.Random(settings.seed * 1_000_003 + step), settings.n_random)
        for group in optimizer.param_groups:
            group["lr"] = warmup_lr(step, settings.steps, settings.lr)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for arch in archs:
            loss = student_loss(net, ids, targets, mask, arch) / len(archs)
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        history.append(total)
        if (step + 1) % checkpoint_every == 0 and step + 1 < settings.steps:
            _save(path, net, optimizer, step + 1, settings, history, corpus.sources)
        if on_step is not None:
            on_step(step + 1, total)
    seconds = time.perf_counter() - begin
    if start < settings.steps or not path.is_file():
        _save(path, net, optimizer, max(start, settings.steps), settings, history, corpus.sources)
    return TrainResult(path=path, start_step=start, steps=max(start, settings.steps), seconds=seconds,
                       losses=history)  # fmt: skip
