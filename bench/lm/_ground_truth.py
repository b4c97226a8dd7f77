"""The AutoDistil ground truth: students distilled one by one, then fine-tuned on GLUE.

For a seeded uniform sample of a sub-space's students, each student is sliced from the teacher, distilled
on its own with the SuperLMs' objective (relation distillation, a fixed number of steps) and scored by its
relation loss on a fixed held-out sample of the corpus; then a copy is fine-tuned on each GLUE task for a
fixed budget and scored on the dev set. The table is written in the long layout the ``csv:PATH`` and
``autodistil[:PATH]`` ground truths read: one row per (student, dataset of the space) with the same
metrics for every dataset, so scores made on any of the space's datasets find their ground truth.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spaces import get_space
from spaces.autodistil import (
    TEACHER_ARCH,
    StudentArch,
    TransformerStudent,
    grid_of,
    load_sliced,
    network_cost,
    non_embedding_params,
    sliced_student,
    to_arch_str,
)

from ._corpus import TokenCorpus, check_glue_count, load_corpus
from ._finetune import FinetuneSettings, finetune, glue_average
from ._glue import TASKS, check_task
from ._teacher import teacher_network, teacher_state
from ._training import distil_student, heldout_loss, resolve_device

#: Metric columns of the table, GLUE's average first (the source's default metric).
METRICS = (
    "glue_avg",
    "sst2_acc",
    "cola_mcc",
    "mrpc_f1",
    "mrpc_acc",
    "rte_acc",
    "neg_distil_loss",
    "distil_loss",
    "params",
    "nonembed_params",
    "flops",
    "distil_seconds",
    "finetune_seconds",
)
GT_DIR_ENV = "BENCH_AUTODISTIL_DIR"


def default_table_path(space: str) -> Path:
    """``$BENCH_AUTODISTIL_DIR/<space>/ground_truth.csv``, by default under ``results/autodistil``."""
    grid_of(space)
    return Path(os.environ.get(GT_DIR_ENV) or "results/autodistil").expanduser() / space / "ground_truth.csv"


@dataclass(frozen=True)
class GroundTruthSettings:
    """The fixed budget every student of the table gets."""

    distil_steps: int = 200
    distil_batch_size: int = 32
    distil_lr: float = 1e-4
    heldout_size: int = 256
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    tasks: tuple[str, ...] = tuple(TASKS)
    seed: int = 0
    #: GLUE training sentences in the distillation corpus (0: generic text only).
    glue_sentences: int = 0

    def check(self) -> GroundTruthSettings:
        if self.distil_steps < 0:
            raise ValueError(f"--distil-steps must be at least 0, got {self.distil_steps}")
        check_glue_count(self.glue_sentences)
        if self.heldout_size < 1:
            raise ValueError(f"--heldout-size must be positive, got {self.heldout_size}")
        for task in self.tasks:
            check_task(task)
        if not self.tasks:
            raise ValueError("name at least one GLUE task")
        self.finetune.check()
        return self


def sample_students(space: str, n: int, seed: int) -> list[StudentArch]:
    """``n`` distinct students of ``space`` drawn uniformly by a seeded generator, in index order."""
    sp = get_space(space)
    if not 1 <= n <= len(sp):
        raise ValueError(f"--sample must be in 1..{len(sp)} for {space}, got {n}")
    return [sp.arch_at(int(i)) for i in sorted(np.random.default_rng(seed).choice(len(sp), n, replace=False))]


def heldout_sample(corpus: TokenCorpus, size: int, seed: int) -> torch.Tensor:
    rows = corpus.heldout
    size = min(size, len(rows))
    return rows[torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(rows), size, replace=False)))]


def truncated_teacher(layers: int, num_classes: int = 2) -> TransformerStudent:
    """The teacher's first ``layers`` layers at full width (the usual baseline of layer-dropping)."""
    arch = StudentArch(layers, TEACHER_ARCH.hidden, TEACHER_ARCH.heads, TEACHER_ARCH.ffn_ratio)
    state = {
        k: v for k, v in teacher_state().items() if not k.startswith("encoder.layer.") or int(k.split(".")[2]) < layers
    }
    net = TransformerStudent(arch, num_classes)
    load_sliced(net, state, layers)  # the kept layers are exactly 0..layers-1 of this state
    return net


def evaluate(
    net: TransformerStudent,
    teacher: TransformerStudent,
    heldout: torch.Tensor,
    settings: GroundTruthSettings,
    root: str | os.PathLike | None,
) -> dict[str, float]:
    """Held-out relation loss and GLUE dev metrics of an already distilled network."""
    loss = heldout_loss(net, teacher, heldout)
    per_task: dict[str, dict[str, float]] = {}
    seconds = 0.0
    for task in settings.tasks:
        result = finetune(net, task, settings.finetune, root=root)
        per_task[task] = result.metrics
        seconds += result.train_seconds + result.eval_seconds
    row = {f"{task}_{name}": value for task, metrics in per_task.items() for name, value in metrics.items()}
    cost = network_cost(net.arch, 2)
    row.update(
        glue_avg=glue_average(per_task),
        distil_loss=loss,
        neg_distil_loss=-loss,
        params=float(cost.params),
        nonembed_params=float(non_embedding_params(net.arch)),
        flops=float(cost.flops),
        finetune_seconds=seconds,
    )
    return row


def measure_student(
    arch: StudentArch,
    settings: GroundTruthSettings,
    *,
    corpus: TokenCorpus,
    teacher: TransformerStudent,
    device: torch.device,
    root: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Distil one student from its sliced initialisation, then evaluate it (see the module)."""
    student = sliced_student(teacher_state(), TEACHER_ARCH.layers, arch).to(device)
    start = time.perf_counter()
    distil_student(
        student,
        teacher,
        corpus.train,
        steps=settings.distil_steps,
        batch_size=settings.distil_batch_size,
        lr=settings.distil_lr,
        seed=settings.seed,
    )
    seconds = time.perf_counter() - start
    row = evaluate(student, teacher, heldout_sample(corpus, settings.heldout_size, settings.seed), settings, root)
    row["distil_seconds"] = seconds
    return row


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path) if Path(path).is_file() else pd.DataFrame(columns=["arch", "dataset", *METRICS])


def build_ground_truth(
    space: str,
    archs: Sequence[StudentArch],
    settings: GroundTruthSettings,
    *,
    out: str | os.PathLike | None = None,
    device: str = "auto",
    data_root: str | os.PathLike | None = None,
    on_student: Callable[[str, dict[str, float] | None], None] | None = None,
) -> Path:
    """Measure every student of ``archs`` not yet in the table at ``out`` and write the table after each one,
    so an interrupted run resumes where it stopped. A table made with other settings is refused."""
    settings.check()
    sp = get_space(space)
    path = Path(out) if out is not None else default_table_path(space)
    meta_path = path.with_name(path.name + ".json")
    # Through JSON, so the comparison with a saved record sees lists where the settings have tuples.
    wanted = json.loads(json.dumps({"space": space, **asdict(settings)}))
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) != wanted:
        raise ValueError(f"{path} was made with other settings (see {meta_path}); pass those, or another --out")
    dev = resolve_device(device)
    corpus = load_corpus(data_root, glue=settings.glue_sentences)
    teacher = teacher_network().to(dev)
    table = read_table(path)
    done = set(table["arch"].astype(str))
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(wanted, indent=2, default=list) + "\n")
    for arch in archs:
        name = to_arch_str(arch)
        sp.parse(name)  # a student of this sub-space
        if name in done:
            if on_student is not None:
                on_student(name, None)
            continue
        row = measure_student(arch, settings, corpus=corpus, teacher=teacher, device=dev, root=data_root)
        rows = pd.DataFrame([{"arch": name, "dataset": ds, **row} for ds in sp.num_classes])
        table = pd.concat([table, rows], ignore_index=True) if len(table) else rows
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        table[["arch", "dataset", *[m for m in METRICS if m in table.columns]]].to_csv(tmp, index=False)
        tmp.replace(path)
        done.add(name)
        if on_student is not None:
            on_student(name, row)
    return path
