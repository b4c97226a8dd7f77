"""The batched engine scores exactly what the one-at-a-time scorer scores, and shares work through the cache."""

from __future__ import annotations

import random

import pytest
import torch

from bench.scoring import (
    BatchedScorer,
    PrecomputedStudent,
    ScoreCache,
    Scorer,
    ScoringConfig,
    make_scorers,
    score_in_workers,
)
from proxies import PROXIES, ProxyError, get_proxy

# Relative tolerance between batched and one-at-a-time scores: the two forward passes sum the same
# products in another order (grouped against single convolutions), about 1e-6 apart in float32.
RTOL = 1e-4
FEATURE_ONLY = [n for n in PROXIES.names() if get_proxy(n).feature_only]


def sample(nb201, n: int, seed: int) -> list:
    return [nb201.arch_at(i) for i in random.Random(seed).sample(range(len(nb201)), n)]


def assert_same(loop, batched):
    assert [(r.arch, r.proxy) for r in loop] == [(r.arch, r.proxy) for r in batched]
    for a, b in zip(loop, batched):
        assert a.status == b.status, (a, b)
        if a.ok:
            assert b.score == pytest.approx(a.score, rel=RTOL, abs=1e-9), (a.arch, a.proxy)


def test_engine_covers_diswot_and_the_kd_proxies():
    assert {"diswot", "diswot_semantic", "diswot_relation", "kd", "sp", "ickd", "at", "fitnet"} <= set(FEATURE_ONLY)
    assert "grad_norm" not in FEATURE_ONLY  # needs gradients through the backbone


def test_diswot_equals_one_at_a_time_on_50_architectures(nb201, data_root):
    archs = sample(nb201, 50, seed=11)
    config = ScoringConfig(teacher="resnet56", batch_size=4, seed=2, data_root=str(data_root))
    names = ["diswot"]
    assert_same(Scorer(config, names).score_many(archs), BatchedScorer(config, names, chunk_size=25).score_many(archs))


@pytest.mark.parametrize("init", ["default", pytest.param("diswot", marks=pytest.mark.slow)])
def test_every_feature_only_proxy_equals_one_at_a_time(nb201, data_root, init):
    archs = sample(nb201, 3, seed=5)
    config = ScoringConfig(teacher="resnet20", batch_size=4, seed=1, init=init, data_root=str(data_root))
    assert_same(
        Scorer(config, FEATURE_ONLY).score_many(archs),
        BatchedScorer(config, FEATURE_ONLY, chunk_size=3).score_many(archs),
    )


def test_other_proxies_fall_back_to_one_at_a_time(nb201, data_root):
    archs = sample(nb201, 3, seed=7)
    config = ScoringConfig(batch_size=4, data_root=str(data_root))
    names = ["params", "grad_norm"]
    assert_same(Scorer(config, names).score_many(archs), BatchedScorer(config, names).score_many(archs))


def test_batched_scores_go_through_the_cache_once(nb201, data_root, tmp_path):
    archs = sample(nb201, 6, seed=3)
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    config = ScoringConfig(teacher="resnet20", batch_size=4, data_root=str(data_root))
    first = BatchedScorer(config, ["diswot", "params"], cache=ScoreCache(url), chunk_size=4).score_many(archs)
    assert not any(r.cached for r in first)
    again = BatchedScorer(config, ["diswot", "params"], cache=ScoreCache(url), chunk_size=4).score_many(archs)
    assert all(r.cached for r in again)
    assert [r.score for r in again] == [r.score for r in first]
    assert len(ScoreCache(url).records(config.key())) == 12


def test_out_of_memory_halves_the_chunk(nb201, data_root, monkeypatch):
    archs = sample(nb201, 5, seed=9)
    config = ScoringConfig(teacher="resnet20", batch_size=4, data_root=str(data_root))
    scorer = BatchedScorer(config, ["diswot"], chunk_size=4)
    real = scorer._score_chunk
    sizes = []

    def limited(chunk, names, prepared=None):
        sizes.append(len(chunk))
        if len(chunk) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated for chunks of more than one student)")
        return real(chunk, names, prepared)

    monkeypatch.setattr(scorer, "_score_chunk", limited)
    records = scorer.score_many(archs)
    assert [r.ok for r in records] == [True] * 5
    assert sizes[:3] == [4, 2, 1] and set(sizes[3:]) == {1}
    assert_same(Scorer(config, ["diswot"]).score_many(archs), records)


def test_precomputed_student_refuses_other_inputs(nb201):
    net = nb201.build(nb201.arch_at(1), 10)
    images = torch.randn(2, 3, 32, 32)
    student = PrecomputedStudent(net.forward_features(images), images, net.classifier)
    assert student.forward_features(images).logits.shape == (2, 10)
    with pytest.raises(ProxyError, match="only answers for the batch"):
        student(images.clone())


def test_workers_share_the_work_through_the_cache(nb201, data_root, tmp_path):
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    indices = random.Random(4).sample(range(len(nb201)), 6)
    config = ScoringConfig(batch_size=4, data_root=str(data_root))
    names = ["params", "diswot"]
    seen = []
    score_in_workers(
        config, names, indices, workers=2, cache_url=url, teacher="resnet20", on_progress=seen.append, poll=0.2
    )
    cache = ScoreCache(url)
    scorers = make_scorers(config, names, teacher="resnet20", cache=cache)
    records = [r for s in scorers for r in s.score_many([nb201.arch_at(i) for i in indices])]
    assert len(records) == 12 and all(r.ok and r.cached for r in records)
    assert sum(cache.count(s.config.key()) for s in scorers) == 12  # one row per pair: nothing scored twice
    alone = make_scorers(config, ["diswot"], teacher="resnet20", engine="loop")[0]
    assert_same(alone.score_many([nb201.arch_at(i) for i in indices]), [r for r in records if r.proxy == "diswot"])


def test_bad_worker_and_engine_settings(data_root, tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        score_in_workers(ScoringConfig(), ["params"], [0], workers=0, cache_url=f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(ValueError, match="Valid choices: auto, batched, loop"):
        make_scorers(ScoringConfig(), ["params"], engine="fast")


def test_one_per_isomorphism_class(nb201):
    from bench.cli._score import one_per_class
    from spaces.nb201 import unique_str

    kept = one_per_class(nb201, list(nb201))
    assert len(kept) == 6466
    assert len({unique_str(a) for a in kept}) == 6466
    first = {}
    for arch in nb201:
        first.setdefault(unique_str(arch), nb201.index(arch))
    assert sorted(nb201.index(a) for a in kept) == sorted(first.values())
