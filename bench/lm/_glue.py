"""GLUE tasks in their standard TSV layout: SST-2, CoLA, MRPC and RTE, and their dev metrics.

Layouts (``<data root>/glue/<TASK>/{train,dev}.tsv``): SST-2 ``sentence<TAB>label`` with a header; CoLA
without a header, ``source<TAB>label<TAB>mark<TAB>sentence``; MRPC ``Quality, #1 ID, #2 ID, #1 String,
#2 String`` with a byte-order mark before the header; RTE ``index, sentence1, sentence2, label`` with
labels ``entailment`` (0) and ``not_entailment`` (1), as GLUE numbers them.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import resolve_data_root

SPLITS = ("train", "dev")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    folder: str
    header: bool
    #: Columns of the first sentence, the second (None for single sentences) and the label.
    text_a: int
    text_b: int | None
    label: int
    labels: tuple[str, ...]
    #: Dev metrics, the first being the task's main one.
    metrics: tuple[str, ...]


TASKS: dict[str, TaskSpec] = {
    "sst2": TaskSpec("sst2", "SST-2", True, 0, None, 1, ("0", "1"), ("acc",)),
    "cola": TaskSpec("cola", "CoLA", False, 3, None, 1, ("0", "1"), ("mcc",)),
    "mrpc": TaskSpec("mrpc", "MRPC", True, 3, 4, 0, ("0", "1"), ("f1", "acc")),
    "rte": TaskSpec("rte", "RTE", True, 1, 2, 3, ("entailment", "not_entailment"), ("acc",)),
}


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int


def check_task(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown GLUE task {task!r}. Valid choices: {', '.join(TASKS)}")
    return TASKS[task]


def task_path(task: str, split: str, root: str | os.PathLike | None = None) -> Path:
    spec = check_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown GLUE split {split!r}. Valid choices: {', '.join(SPLITS)}")
    path = resolve_data_root(root) / "glue" / spec.folder / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"GLUE {spec.folder} {split} set not found at {path}")
    return path


def read_task(task: str, split: str, root: str | os.PathLike | None = None) -> list[Example]:
    """Every example of one split; ValueError naming the line of a malformed row."""
    spec = check_task(task)
    path = task_path(task, split, root)
    examples = []
    # utf-8-sig drops MRPC's byte-order mark; GLUE's TSVs are not quoted (sentences contain quotes).
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for number, row in enumerate(rows, start=1):
            if spec.header and number == 1:
                continue
            if not row:
                continue
            needed = max(c for c in (spec.text_a, spec.text_b, spec.label) if c is not None)
            if len(row) <= needed:
                raise ValueError(f"{path} line {number}: expected at least {needed + 1} columns, got {len(row)}")
            label = row[spec.label].strip()
            if label not in spec.labels:
                raise ValueError(f"{path} line {number}: label {label!r} is not one of {', '.join(spec.labels)}")
            text_b = row[spec.text_b] if spec.text_b is not None else None
            examples.append(Example(row[spec.text_a], text_b, spec.labels.index(label)))
    if not examples:
        raise ValueError(f"{path} holds no example")
    return examples


def glue_metrics(task: str, predictions: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """The task's dev metrics in percent: accuracy (SST-2, RTE), Matthews correlation (CoLA), F1 and
    accuracy (MRPC, F1 of the positive class)."""
    spec = check_task(task)
    if len(predictions) != len(labels) or not labels:
        raise ValueError(f"need as many predictions as labels (got {len(predictions)} and {len(labels)})")
    tp = sum(p == 1 and y == 1 for p, y in zip(predictions, labels))
    tn = sum(p == 0 and y == 0 for p, y in zip(predictions, labels))
    fp = sum(p == 1 and y == 0 for p, y in zip(predictions, labels))
    fn = sum(p == 0 and y == 1 for p, y in zip(predictions, labels))
    values = {"acc": 100.0 * (tp + tn) / len(labels)}
    values["f1"] = 100.0 * 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    values["mcc"] = 100.0 * (tp * tn - fp * fn) / denominator if denominator else 0.0
    return {m: values[m] for m in spec.metrics}
