"""AutoDistil's student space: the grid, its registration, costs, and slicing the teacher exactly."""

from __future__ import annotations

import optuna
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.lm import load_hf_teacher, load_tokenizer, teacher_network, teacher_state, truncated_teacher
from spaces import get_space, list_spaces
from spaces.autodistil import (
    SUBSPACES,
    TEACHER_ARCH,
    StudentArch,
    SuperLM,
    kept_layers,
    network_cost,
    non_embedding_params,
    parse_arch_str,
    slice_state,
    sliced_student,
)

SPACES = ["autodistil-base", "autodistil-small", "autodistil-tiny"]
SENTENCES = ["A short sentence.", "A much longer sentence, so that the first one is padded in the batch of two."]


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    return load_tokenizer()(SENTENCES, ["and a second segment", "of a pair"], padding=True, return_tensors="pt")


def test_three_sub_spaces_follow_the_rules_and_their_union_is_one_space():
    assert set(SPACES) <= set(list_spaces())
    hidden: set[int] = set()
    for name in SPACES:
        space = get_space(name)
        assert len(space) == 108 == len(set(space))
        assert not hidden & set(space.grid.hidden), "a hidden size in two sub-spaces"
        hidden |= set(space.grid.hidden)
        assert min(space.grid.layers) >= 3 and max(space.grid.layers) == TEACHER_ARCH.layers  # depth kept high
        assert TEACHER_ARCH not in set(space)  # the teacher is no student
        for index in (0, 77, 107):
            arch = space.arch_at(index)
            assert space.index(space.parse(space.to_str(arch))) == index == space.index(space.parse(str(index)))
            assert space.from_params(space.to_params(arch)) == arch
    tiny, base = get_space("autodistil-tiny"), get_space("autodistil-base")
    assert max(non_embedding_params(a) for a in tiny) < min(non_embedding_params(a) for a in base)
    union = get_space("autodistil-all")
    assert len(union) == 324 and set(union) == set().union(*(set(get_space(n)) for n in SPACES))
    assert union.grid.largest == StudentArch(6, 384, 12, 3.5) and union.grid.smallest == StudentArch(3, 96, 4, 2.0)
    arch = get_space("autodistil-small").arch_at(5)
    assert union.from_params(union.to_params(arch)) == arch and list(union.distributions()) == ["student"]
    assert union.build(arch, 2).space_name == "autodistil-all"  # the superlm proxy reads the union's SuperLM
    assert get_space("autodistil-small").build(arch, 2).space_name == "autodistil-small"
    with pytest.raises(ValueError, match="in none of the sub-spaces"):
        union.parse("L2_H96_A4_R2.0")


def test_bad_students_are_explained():
    tiny = get_space("autodistil-tiny")
    with pytest.raises(ValueError, match=r"not in autodistil-tiny: layers in \(3, 4, 5, 6\)"):
        tiny.parse("L6_H384_A12_R4.0")
    with pytest.raises(ValueError, match=r"not a student arch string like L4_H256_A8_R3.0"):
        tiny.parse("L4-H256")
    with pytest.raises(ValueError, match=r"hidden must be in 1..384"):
        parse_arch_str("L2_H512_A4_R2.0")
    with pytest.raises(ValueError, match=r"out of range 0..107"):
        tiny.arch_at(108)
    with pytest.raises(ValueError, match=r"Valid choices: .*autodistil-tiny"):
        get_space("autodistil-huge")


def test_optuna_samples_members_of_the_grid():
    space = get_space("autodistil-small")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask(space.distributions())
        assert space.from_params(trial.params) in set(space)
        study.tell(trial, 0.0)


@pytest.mark.parametrize("arch", [StudentArch(3, 96, 4, 2.0), StudentArch(4, 128, 5, 2.5), StudentArch(6, 160, 6, 3.0)])
def test_cost_counts_what_torch_counts(arch):
    net = get_space("autodistil-tiny").build(arch, 2)
    cost = network_cost(arch, 2)
    assert cost.params == sum(p.numel() for p in net.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.randint(1000, 2000, (1, 128)))
    assert cost.flops == counter.get_total_flops()
    assert network_cost(TEACHER_ARCH, 2).params == 22_713_986  # all-MiniLM-L6-v2 with pooler and a 2-way head


def test_layers_are_kept_evenly_with_the_last():
    assert kept_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    assert kept_layers(3, 6) == [1, 3, 5]
    assert kept_layers(1, 4) == [3]
    assert kept_layers(4, 6)[-1] == 5


def test_the_teacher_sliced_to_itself_is_the_teacher(batch):
    reference = load_hf_teacher()
    net = teacher_network()
    with torch.no_grad():
        expected = reference(**batch)
        mine = net.forward_features(batch["input_ids"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(mine.pre_pool[real], expected.last_hidden_state[real], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(mine.embedding, expected.pooler_output, atol=2e-5, rtol=1e-5)
    same = sliced_student(teacher_state(), 6, TEACHER_ARCH)
    for key, value in teacher_state().items():
        if key in same.state_dict():
            assert torch.equal(same.state_dict()[key], value), key


def test_a_student_is_the_leading_block_of_the_teacher():
    arch = StudentArch(3, 128, 4, 2.0)
    state = slice_state(teacher_state(), 6, arch)
    teacher = teacher_state()
    # Student layer 0 is teacher layer 1 (layers kept evenly); rows = heads * 32, columns = hidden.
    assert torch.equal(state["encoder.layer.0.attention.self.query.weight"],
                       teacher["encoder.layer.1.attention.self.query.weight"][:128, :128])  # fmt: skip
    assert torch.equal(state["encoder.layer.2.intermediate.dense.weight"],
                       teacher["encoder.layer.5.intermediate.dense.weight"][:256, :128])  # fmt: skip
    assert state["embeddings.word_embeddings.weight"].shape == (30522, 128)
    with pytest.raises(ValueError, match="the source is smaller"):
        slice_state(slice_state(teacher, 6, arch), 3, StudentArch(3, 160, 4, 2.0))


def test_a_superlm_runs_each_student_as_its_standalone_copy(batch):
    superlm = SuperLM.from_teacher("autodistil-tiny", teacher_state(), 6)
    ids = batch["input_ids"]
    for arch in (StudentArch(4, 128, 5, 2.5), SUBSPACES["tiny"].largest, SUBSPACES["tiny"].smallest):
        with torch.no_grad():
            shared = superlm.forward_features(ids, arch=arch)
            alone = superlm.sub_network(arch).forward_features(ids)
        torch.testing.assert_close(alone.pre_pool, shared.pre_pool)
        for a, b in zip(alone.qkv, shared.qkv):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        superlm.forward_features(ids, arch=StudentArch(4, 192, 4, 2.0))


def test_truncated_teacher_keeps_the_first_layers():
    net = truncated_teacher(2)
    assert net.arch == StudentArch(2, 384, 12, 4.0)
    assert torch.equal(
        net.state_dict()["encoder.layer.1.output.dense.weight"], teacher_state()["encoder.layer.1.output.dense.weight"]
    )
