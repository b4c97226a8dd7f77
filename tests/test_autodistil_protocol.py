"""The fine-tuning protocol: the learning rate chosen on a split of the training set, seeds, flags, the
majority-class row, and the names of the averages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.lm import (
    FinetuneSettings,
    Protocol,
    average_label,
    choose_lr,
    majority_outcomes,
    part_rows,
    read_task,
    run_task,
    summary_row,
)
from bench.lm import _finetune as finetune_module
from bench.lm import _protocol as protocol_module
from spaces.autodistil import StudentArch, TransformerStudent


def test_fit_and_select_partition_the_training_set():
    fit, select = part_rows(1000, "fit"), part_rows(1000, "select")
    assert len(select) == 100 and len(fit) == 900
    assert not set(fit) & set(select) and set(fit) | set(select) == set(range(1000))
    assert np.array_equal(select, part_rows(1000, "select"))  # fixed, whatever the caller's seed
    assert select.max() > 500  # a permutation, not the first rows of the file


def test_the_learning_rate_is_chosen_on_select_and_never_on_dev(monkeypatch, data_root):
    """Each rate is trained on ``fit`` and scored on ``select``; only the chosen one reaches the dev set."""
    seen: list[tuple[str, float, int, str]] = []
    real_train, real_score = protocol_module.train_classifier, protocol_module.score_classifier

    def train(net, task, settings, *, root=None, part="train"):
        seen.append(("train", settings.lr, settings.seed, part))
        return real_train(net, task, settings, root=root, part=part)

    def score(net, task, settings, *, root=None, part="dev", train_seconds=0.0):
        seen.append(("score", settings.lr, settings.seed, part))
        result = real_score(net, task, settings, root=root, part=part, train_seconds=train_seconds)
        if part == "select":  # make the middle rate the best one on the training split
            result.metrics["acc"] = 90.0 if settings.lr == 3e-4 else 10.0
        return result

    monkeypatch.setattr(protocol_module, "train_classifier", train)
    monkeypatch.setattr(protocol_module, "score_classifier", score)
    torch.manual_seed(0)
    net = TransformerStudent(StudentArch(3, 96, 4, 2.0))
    settings = FinetuneSettings(steps=2, batch_size=4, seq_len=16, dev_limit=8)
    outcome = run_task(net, "rte", Protocol(lrs=(1e-4, 3e-4, 1e-3), seeds=3, finetune=settings), root=data_root)
    assert outcome.lr == 3e-4 and outcome.select_scores == {1e-4: 10.0, 3e-4: 90.0, 1e-3: 10.0}
    assert [s for s in seen if s[0] == "train"] == [
        ("train", 1e-4, 0, "fit"), ("train", 3e-4, 0, "fit"), ("train", 1e-3, 0, "fit"),
        ("train", 3e-4, 1, "fit"), ("train", 3e-4, 2, "fit"),
    ]  # fmt: skip
    dev = [s for s in seen if s[3] == "dev"]
    assert dev == [("score", 3e-4, 0, "dev"), ("score", 3e-4, 1, "dev"), ("score", 3e-4, 2, "dev")]
    assert len(outcome.runs) == 3 and all(sum(r.predicted) == 8 for r in outcome.runs)


def test_ties_choose_the_first_rate_of_the_grid():
    assert choose_lr({1e-4: 50.0, 3e-4: 70.0, 1e-3: 70.0}) == 3e-4
    assert choose_lr({5e-4: 60.0, 1e-4: 60.0}) == 5e-4


def test_majority_row_is_flagged_and_scores_the_majority(data_root):
    protocol = Protocol(seeds=1, finetune=FinetuneSettings(seq_len=16), tasks=("cola", "mrpc"))
    outcomes = majority_outcomes(protocol, root=data_root)
    dev = read_task("mrpc", "dev", data_root)
    positive = sum(e.label for e in dev)
    assert outcomes["mrpc"].runs[0].metrics["acc"] == pytest.approx(100 * positive / len(dev))  # MRPC: mostly 1
    row = summary_row(outcomes)
    assert row["cola_mcc"] == 0.0 and row["flags"] == "cola 1/1, mrpc 1/1" and row["constant"]
    assert row["glue_avg"] == pytest.approx((row["cola_mcc"] + row["mrpc_f1"]) / 2)
    assert math.isnan(row["glue_avg_std"])  # one run: no spread


def test_summary_is_mean_and_std_over_seeds_with_flags():
    runs = [
        finetune_module.FinetuneResult("sst2", {"acc": v}, 0.0, 0.0, counts)
        for v, counts in ((50.0, (10, 0)), (60.0, (4, 6)), (70.0, (5, 5)))
    ]
    rte = [finetune_module.FinetuneResult("rte", {"acc": v}, 0.0, 0.0, (3, 3)) for v in (40.0, 50.0, 60.0)]
    outcomes = {
        "sst2": protocol_module.TaskOutcome("sst2", 1e-3, {1e-3: 1.0}, tuple(runs)),
        "rte": protocol_module.TaskOutcome("rte", 1e-4, {1e-4: 1.0}, tuple(rte)),
    }
    row = summary_row(outcomes)
    assert row["sst2_acc"] == 60.0 and row["sst2_acc_std"] == pytest.approx(10.0)
    assert row["glue_avg"] == pytest.approx(55.0) and row["glue_avg_std"] == pytest.approx(10.0)
    assert row["flags"] == "sst2 1/3" and row["sst2_lr"] == 1e-3


def test_protocol_checks_and_average_names():
    with pytest.raises(ValueError, match="seeds must be at least 1"):
        Protocol(seeds=0).check()
    with pytest.raises(ValueError, match="positive rates"):
        Protocol(lrs=()).check()
    assert average_label(("sst2",)) == "SST-2 acc"
    assert average_label(("sst2", "cola", "mrpc", "rte")) == "GLUE avg"
    assert average_label(("sst2", "rte")) == "avg (SST-2, RTE)"
