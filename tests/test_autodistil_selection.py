"""Selecting the result of a search: ties go to the cheaper architecture, and best.json stays valid JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from bench.search import best_row
from bench.search._outputs import _jsonable


def trials(**columns) -> pd.DataFrame:
    base = {"state": ["COMPLETE"] * 4, "feasible": [True] * 4, "number": [0, 1, 2, 3]}
    return pd.DataFrame({**base, **columns})


def test_ties_go_to_fewer_flops_then_fewer_params_and_are_counted():
    frame = trials(arch=["a", "b", "c", "d"], score=[-1.5, -1.0, -1.0, -2.0],
                   flops=[10, 83, 64, 1], params=[5, 9, 9, 1])  # fmt: skip
    best = best_row(frame)
    assert best["arch"] == "c" and best["tied"] == 1  # 64 MFLOPs beat the earlier 83 MFLOPs trial
    frame = trials(arch=["a", "b", "c", "d"], score=[-1.0, -1.0, -3.0, -1.0], flops=[5, 5, 1, 5], params=[7, 6, 1, 6])
    best = best_row(frame)
    assert best["arch"] == "b" and best["tied"] == 2  # same FLOPs: fewer parameters, then the earlier trial
    untied = best_row(trials(arch=["a", "b", "c", "d"], score=[0.0, 1.0, 2.0, 3.0], flops=[1] * 4, params=[1] * 4))
    assert untied["arch"] == "d" and untied["tied"] == 0


def test_over_budget_trials_are_never_the_best():
    frame = trials(arch=["a", "b", "c", "d"], score=[9.0, 1.0, 2.0, 3.0], flops=[1] * 4, params=[1] * 4)
    frame["feasible"] = [False, True, True, True]
    assert best_row(frame)["arch"] == "d"


def test_missing_values_become_null_not_nan():
    record = {k: _jsonable(v) for k, v in {"val_acc": np.float64("nan"), "glue_avg": float("nan"),
                                            "score": np.float32(1.5), "params": np.int64(3)}.items()}  # fmt: skip
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text) == {"val_acc": None, "glue_avg": None, "score": 1.5, "params": 3}
    assert not math.isnan(json.loads(text)["score"])
