"""Relation distillation, the sandwich rule, SuperLM training and resuming, and the Transformer proxies."""

from __future__ import annotations

import math
import random

import pytest
import torch

from bench.lm import SuperLMSettings, TokenCorpus, teacher_network, teacher_state, train_superlm
from bench.scoring import OK, Scorer, ScoringConfig
from proxies import ProxyError, ProxyInputs, get_proxy
from spaces import get_space
from spaces.autodistil import (
    SUBSPACES,
    SUPERLM_DIR_ENV,
    StudentArch,
    SuperLM,
    load_superlm,
    relation_loss,
    sandwich,
    sliced_student,
    teacher_relations,
)

TINY = "autodistil-tiny"
TRANSFORMER_PROXIES = ["superlm", "minilm_init", "lm_sample_relation", "lm_attention", "lm_grad_norm", "lm_snip"]


def token_ids(batch: int = 4, length: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 20000, (batch, length), generator=gen)
    ids[:, 0] = 101
    ids[0, length // 2 :] = 0  # one padded row
    return ids


@pytest.fixture(scope="module")
def teacher():
    return teacher_network()


@pytest.fixture(scope="module")
def corpus() -> TokenCorpus:
    return TokenCorpus(train=token_ids(32, 16, 1).int(), heldout=token_ids(8, 16, 2).int(), seq_len=16)


def qkv_and_mask(net, ids, arch=None):
    features = net.forward_features(ids, arch=arch)
    return features.qkv, features.mask


def test_relation_loss_is_zero_for_the_teacher_and_positive_for_a_student(teacher):
    ids = token_ids()
    qkv, mask = qkv_and_mask(teacher, ids)
    targets = teacher_relations(qkv, mask)
    assert relation_loss(targets, qkv, mask).item() == 0.0
    # Against Hugging Face's own forward pass: equal up to float error.
    student = sliced_student(teacher_state(), 6, StudentArch(2, 96, 2, 2.0))  # 64 columns: 12 uneven heads
    s_qkv, _ = qkv_and_mask(student, ids)
    loss = relation_loss(targets, s_qkv, mask)
    assert loss.item() > 0.01 and math.isfinite(loss.item())
    loss.backward()
    assert student.encoder.layer[1].attention.self.query.weight.grad.abs().sum() > 0


def test_any_head_count_gives_a_loss(teacher):
    ids = token_ids()
    targets = teacher_relations(*qkv_and_mask(teacher, ids))
    _, mask = qkv_and_mask(teacher, ids)
    for heads in (1, 2, 3, 5, 7):
        student = sliced_student(teacher_state(), 6, StudentArch(3, 64, heads, 2.0))
        assert relation_loss(targets, qkv_and_mask(student, ids)[0], mask).item() > 0


def test_sandwich_covers_the_extremes_then_random_students():
    grid = SUBSPACES["small"]
    members = set(grid.archs())
    seen = set()
    for seed in range(20):
        archs = sandwich(grid, random.Random(seed))
        assert archs[0] == grid.largest and archs[1] == grid.smallest and len(archs) == 4
        assert set(archs) <= members
        seen |= set(archs[2:])
    assert len(seen) > 20  # the two random ones vary
    assert sandwich(grid, random.Random(3)) == sandwich(grid, random.Random(3))


def settings(**kwargs) -> SuperLMSettings:
    return SuperLMSettings(**{"steps": 2, "batch_size": 2, "seq_len": 16, "lr": 1e-3, **kwargs})


def test_superlm_training_moves_the_weights_and_resumes_exactly(tmp_path, corpus):
    straight = train_superlm(TINY, settings(), out=tmp_path / "a.pt", device="cpu", corpus=corpus)
    assert straight.steps == 2 and len(straight.losses) == 2 and all(math.isfinite(x) for x in straight.losses)
    trained, meta = load_superlm(straight.path, TINY)
    assert meta["step"] == 2
    fresh = SuperLM.from_teacher(TINY, teacher_state(), 6)
    assert not torch.equal(trained.encoder.layer[0].attention.self.query.weight,
                           fresh.encoder.layer[0].attention.self.query.weight)  # fmt: skip

    def interrupt(step: int, loss: float) -> None:
        if step == 1:
            raise KeyboardInterrupt

    path = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        train_superlm(TINY, settings(), out=path, device="cpu", corpus=corpus, checkpoint_every=1, on_step=interrupt)
    assert load_superlm(path, TINY)[1]["step"] == 1
    resumed = train_superlm(TINY, settings(), out=path, device="cpu", corpus=corpus)
    assert resumed.start_step == 1 and resumed.losses == straight.losses
    for (key, a), b in zip(trained.state_dict().items(), load_superlm(path, TINY)[0].state_dict().values()):
        assert torch.equal(a, b), key
    with pytest.raises(ValueError, match="other settings"):
        train_superlm(TINY, settings(lr=5e-4), out=path, device="cpu", corpus=corpus)


def inputs_for(ids: torch.Tensor, teacher) -> ProxyInputs:
    return ProxyInputs(ids, torch.zeros(len(ids), dtype=torch.long), 2, 0, teacher=teacher)


def test_superlm_scores_with_the_inherited_weights(tmp_path, monkeypatch, teacher):
    monkeypatch.setenv(SUPERLM_DIR_ENV, str(tmp_path))
    ids = token_ids()
    arch = StudentArch(4, 128, 5, 2.5)
    proxy = get_proxy("superlm")
    student = get_space(TINY).build(arch, 2)
    with pytest.raises(ProxyError, match="bench superlm train --space autodistil-tiny"):
        proxy.score(student, inputs_for(ids, teacher))
    superlm = SuperLM.from_teacher(TINY, teacher_state(), 6)
    with torch.no_grad():
        superlm.encoder.layer[5].attention.self.key.weight.mul_(1.5)  # a change only the inherited weights carry
    path = tmp_path / TINY / "superlm.pt"
    path.parent.mkdir()
    torch.save({"space": TINY, "arch": "L6_H160_A6_R3.0", "step": 7, "model": superlm.state_dict()}, path)
    score = proxy.score(get_space(TINY).build(arch, 2), inputs_for(ids, teacher))
    qkv, mask = qkv_and_mask(teacher, ids)
    with torch.no_grad():
        expected = relation_loss(teacher_relations(qkv, mask), qkv_and_mask(superlm, ids, arch)[0], mask)
    assert score == pytest.approx(-expected.item(), rel=1e-5)
    sliced = relation_loss(teacher_relations(qkv, mask), qkv_and_mask(sliced_student(teacher_state(), 6, arch), ids)[0],
                           mask)  # fmt: skip
    assert score != pytest.approx(-sliced.item(), rel=1e-3)  # not the teacher's slice: the SuperLM's weights


@pytest.mark.parametrize("name", [n for n in TRANSFORMER_PROXIES if n != "superlm"] + ["nonembed_params"])
def test_training_free_proxies_are_finite_and_deterministic(name, teacher):
    ids = token_ids()
    proxy = get_proxy(name)
    values = []
    for arch in (StudentArch(3, 96, 4, 2.0), StudentArch(6, 160, 6, 3.0)):
        runs = []
        for _ in range(2):
            torch.manual_seed(0)
            runs.append(proxy.score(get_space(TINY).build(arch, 2), inputs_for(ids, teacher)))
        assert runs[0] == pytest.approx(runs[1], rel=1e-6) and math.isfinite(runs[0])
        values.append(runs[0])
    assert values[0] != values[1]
    assert get_proxy("minilm_init").score(teacher, inputs_for(ids, teacher)) == 0.0


def test_transformer_proxies_refuse_other_spaces():
    with pytest.raises(ValueError, match="takes image inputs"):
        Scorer(ScoringConfig(space="nb201", teacher="resnet20"), ["minilm_init"])


def test_the_scorer_feeds_token_batches(data_root):
    config = ScoringConfig(
        space=TINY, dataset="rte", batch_size=4, seed=0, teacher="minilm-l6", data_root=str(data_root)
    )
    scorer = Scorer(config, ["minilm_init", "lm_attention", "params", "grad_norm"])
    inputs = scorer.inputs()
    assert inputs.images.dtype == torch.long and inputs.images.shape[0] == 4 and set(inputs.labels.tolist()) <= {0, 1}
    records = scorer.score(get_space(TINY).arch_at(5))
    assert all(r.status == OK for r in records.values()), {k: r.error for k, r in records.items()}
    with pytest.raises(ValueError, match="'corpus' has no labels"):
        Scorer(ScoringConfig(space=TINY, dataset="corpus", batch_size=4), ["grad_norm"]).inputs()


def test_score_keys_follow_the_superlm_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(SUPERLM_DIR_ENV, str(tmp_path))
    config = ScoringConfig(space=TINY, dataset="corpus")
    without = config.key()
    path = tmp_path / TINY / "superlm.pt"
    path.parent.mkdir()
    torch.save({"weights": torch.zeros(2)}, path)
    first = config.key()
    torch.save({"weights": torch.ones(2)}, path)  # retrained: its superlm scores must not come from the cache
    assert len({without, first, config.key()}) == 3
    assert "inherited_weights" not in ScoringConfig(space="nb201").key_fields()
