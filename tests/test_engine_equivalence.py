"""The engine's batched tail equals the one-at-a-time scores for every feature-only proxy, in one host sync a chunk.

The cells are cheap ones (skip and none edges but for at most one 1x1 convolution or average pool, some of
them disconnected), so fifty students at the real batch of 64 stay fast; the stem, the reductions and every
kind of edge still run through the stacked network.
"""

from __future__ import annotations

import random

import pytest
import torch

from bench.scoring import BatchedScorer, Scorer, ScoringConfig, resolve_engine
from bench.scoring._dispatch import DispatchCounter, count, read_back
from proxies import PROXIES, get_proxy
from spaces.nb201 import is_connected

FEATURE_ONLY = [n for n in PROXIES.names() if get_proxy(n).feature_only]
# Both forward passes sum the same products in different orders (grouped against single convolutions).
RTOL = 2e-5


def cheap_cells(nb201, n: int, seed: int) -> list:
    """``n`` cells whose edges skip or are none but for at most one that computes (a 1x1 convolution or a 3x3
    average pool), some of them disconnected."""
    cheap = [a for a in nb201 if sum(op not in ("none", "skip_connect") for op in a.op_names) <= 1]
    cheap = [a for a in cheap if "nor_conv_3x3" not in a.op_names]
    return random.Random(seed).sample(cheap, n)


@pytest.mark.parametrize("init", ["default", "diswot"])
def test_every_feature_only_proxy_scores_50_cells_as_the_loop_does(nb201, data_root, init):
    archs = cheap_cells(nb201, 50, seed=21)
    assert any(not is_connected(a) for a in archs) and any(is_connected(a) for a in archs)
    config = ScoringConfig(teacher="resnet20", batch_size=64, seed=4, init=init, data_root=str(data_root))
    loop = Scorer(config, FEATURE_ONLY).score_many(archs)
    batched = BatchedScorer(config, FEATURE_ONLY, chunk_size=25).score_many(archs)
    assert [(r.arch, r.proxy) for r in loop] == [(r.arch, r.proxy) for r in batched]
    for a, b in zip(loop, batched):
        assert (a.status, a.error) == (b.status, b.error), (a.arch, a.proxy)
        if a.ok:
            assert b.score == pytest.approx(a.score, rel=RTOL, abs=1e-12), (a.arch, a.proxy)
    assert sum(r.ok for r in loop) > 0.8 * len(loop)


def test_every_proxy_with_a_batched_form_is_feature_only():
    for name in PROXIES.names():
        if not get_proxy(name).feature_only:
            assert type(get_proxy(name)).score_batch is type(get_proxy("params")).score_batch, name
    assert {"diswot", "diswot_semantic", "diswot_relation", "kd", "sp", "rkd", "nst"} <= set(FEATURE_ONLY)


def test_a_chunk_is_read_back_with_one_host_sync(nb201, data_root):
    archs = [a for a in cheap_cells(nb201, 12, seed=3) if is_connected(a)][:6]
    config = ScoringConfig(teacher="resnet20", batch_size=8, seed=1, data_root=str(data_root))
    engine = BatchedScorer(config, FEATURE_ONLY, chunk_size=3)
    for name in FEATURE_ONLY:
        engine.inputs_for(name)
    counts = count(lambda: engine.score_many(archs), len(archs), chunks=2)
    assert counts.syncs_per_chunk == 1
    loop = Scorer(config, FEATURE_ONLY)
    for name in FEATURE_ONLY:
        loop.inputs_for(name)
    one_at_a_time = count(lambda: loop.score_many(archs[:2]), 2, chunks=2)
    assert one_at_a_time.syncs_per_chunk >= len(FEATURE_ONLY)  # a float() a score, and more
    assert one_at_a_time.launches_per_student > counts.launches_per_student


def test_a_chunk_of_128_launches_at_most_20_kernels_a_student(nb201, data_root):
    """At bench score's GPU chunk; launches do not depend on the batch, so a batch of 2 keeps this cheap."""
    archs = random.Random(8).sample(list(nb201), 128)
    config = ScoringConfig(teacher="resnet56", batch_size=2, seed=0, data_root=str(data_root))
    engine = BatchedScorer(config, ["diswot"], chunk_size=128)
    engine.inputs_for("diswot")
    counts = count(lambda: engine.score_many(archs), 128, chunks=1)
    assert counts.syncs_per_chunk == 1
    assert counts.launches_per_student <= 20


def test_the_counter_sees_launches_syncs_and_views():
    x = torch.arange(6.0)
    with DispatchCounter() as counter:
        y = (x * 2).view(2, 3).transpose(0, 1)  # one kernel, two views
        float(y.sum())  # a kernel and a scalar read
        x[x > 2]  # a comparison, and a mask whose size the host must read
        read_back(y)
    assert counter.launches >= 4 and counter.by_op["aten.mul"] == 1 and "aten.view" not in counter.by_op
    assert counter.syncs == 3


def test_auto_runs_the_loop_on_a_cpu_and_the_engine_on_a_gpu():
    assert resolve_engine("auto", "cpu") == "loop"
    assert resolve_engine("auto", "cuda:1") == "batched"
    assert resolve_engine("batched", "cpu") == "batched"
    with pytest.raises(ValueError, match="Valid choices: auto, batched, loop"):
        resolve_engine("fast", "cpu")


def test_score_says_once_that_the_engine_is_slower_on_a_cpu(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.scoring import CPU_ENGINE_NOTE

    args = ["score", "--proxy", "params", "--arch", "1", "--device", "cpu", "--out", str(tmp_path / "s.csv")]
    chosen = CliRunner().invoke(app, [*args, "--engine", "batched"])
    assert chosen.exit_code == 0, chosen.output
    assert chosen.stdout.count(CPU_ENGINE_NOTE) == 1
    default = CliRunner().invoke(app, args)
    assert default.exit_code == 0 and CPU_ENGINE_NOTE not in default.stdout
