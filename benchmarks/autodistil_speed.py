"""AutoDistil on one device: SuperLM training steps per second per sub-space, and GLUE fine-tuning time per task.

    python benchmarks/autodistil_speed.py --device cpu --steps 3 --batch-size 16 --finetune-steps 20
    python benchmarks/autodistil_speed.py --device cuda --steps 20 --batch-size 64 --finetune-steps 200

SuperLM: ``--steps`` steps (after one warm-up step) of the sandwich rule (four students a step) on ``--batch-size``
corpus sequences of 128 tokens, written to a temporary checkpoint. Fine-tuning: the largest student of
``--finetune-space`` (weights sliced from the teacher) on each task for ``--finetune-steps`` steps of
``--finetune-batch-size`` examples of 64 tokens, then the whole dev set; both times are printed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from bench.lm import (
    TASKS,
    FinetuneSettings,
    SuperLMSettings,
    finetune,
    load_corpus,
    read_task,
    resolve_device,
    teacher_state,
    train_superlm,
)
from spaces.autodistil import SUBSPACES, TEACHER_ARCH, grid_of, sliced_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--spaces", default=",".join(f"autodistil-{k}" for k in SUBSPACES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--finetune-space", default="autodistil-tiny")
    parser.add_argument("--finetune-steps", type=int, default=20)
    parser.add_argument("--finetune-batch-size", type=int, default=16)
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    device = resolve_device(args.device)
    console = Console()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    console.print(f"device: {name}")
    corpus = load_corpus()

    table = Table("sub-space", "largest student", "steps", "batch", "steps/s", "s/step")
    for space in args.spaces.split(","):
        grid_of(space)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "superlm.pt"
            warm = SuperLMSettings(steps=1, batch_size=args.batch_size)
            train_superlm(space, warm, out=path, device=str(device), corpus=corpus)
            # The same settings with a larger budget resume from the warm-up step: only the timed steps run.
            timed = SuperLMSettings(steps=1 + args.steps, batch_size=args.batch_size)
            result = train_superlm(space, timed, out=path, device=str(device), corpus=corpus)
        rate = result.steps_per_second
        table.add_row(space, str(grid_of(space).largest), str(args.steps), str(args.batch_size), f"{rate:.3f}",
                      f"{1 / rate:.2f}")  # fmt: skip
    console.print(table)

    arch = grid_of(args.finetune_space).largest
    student = sliced_student(teacher_state(), TEACHER_ARCH.layers, arch).to(device)
    settings = FinetuneSettings(steps=args.finetune_steps, batch_size=args.finetune_batch_size, seq_len=64)
    table = Table("task", "student", "steps", "train s", "s/step", "dev examples", "eval s", "metrics")
    for task in args.tasks.split(","):
        finetune(student, task, FinetuneSettings(steps=1, batch_size=2, seq_len=64, dev_limit=2))  # tokenise once
        result = finetune(student, task, settings)
        metrics = ", ".join(f"{k} {v:.1f}" for k, v in result.metrics.items())
        table.add_row(task, str(arch), str(args.finetune_steps), f"{result.train_seconds:.1f}",
                      f"{result.train_seconds / args.finetune_steps:.3f}", str(len(read_task(task, "dev"))),
                      f"{result.eval_seconds:.1f}", metrics)  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
