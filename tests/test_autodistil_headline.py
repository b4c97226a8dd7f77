"""The headline experiment: baselines that fit each budget, selection with its tie-break, the K=1 union
trained with the same total steps, and the two tables the command writes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.lm import (
    TokenCorpus,
    narrowed_arch,
    select,
    teacher_network,
    teacher_state,
    truncated_layers,
)
from bench.lm import _headline as headline_module
from bench.lm import _headline_run as run_module
from spaces import get_space
from spaces.autodistil import SuperLM, load_superlm, network_cost

runner = CliRunner()


def test_baselines_are_the_largest_that_fit():
    assert truncated_layers(10e6) is None  # the full-width embeddings alone take 11.9 M
    layers = truncated_layers(16e6)
    assert layers == 2 and network_cost(headline_module._truncated_arch(3), 2).params > 16e6
    narrow = narrowed_arch(5e6)
    assert narrow.layers == 6 and narrow.heads * 32 == narrow.hidden and narrow.ffn_ratio == 4.0
    assert network_cost(narrow, 2).params <= 5e6
    wider = type(narrow)(6, narrow.hidden + 32, narrow.heads + 1, 4.0)
    assert network_cost(wider, 2).params > 5e6
    assert narrowed_arch(1e6) is None


def test_selection_breaks_ties_toward_the_cheaper_student(tmp_path, monkeypatch):
    space = "autodistil-tiny"
    path = tmp_path / space / "superlm.pt"
    path.parent.mkdir(parents=True)
    torch.save({"space": space, "arch": "L6_H160_A6_R3.0", "step": 0,
                "model": SuperLM.from_teacher(space, teacher_state(), 6).state_dict()}, path)  # fmt: skip
    # A loss that sees only the hidden size: every width-96 student ties.
    monkeypatch.setattr(headline_module, "student_loss", lambda net, ids, t, m, arch: torch.tensor(float(arch.hidden)))
    ids = torch.randint(1000, 5000, (2, 8))
    pick = select([space], {space: path}, 5e6, ids, teacher_network())
    within = [a for a in get_space(space) if network_cost(a, 2).params <= 5e6]
    width_96 = [a for a in within if a.hidden == 96]
    assert pick.arch == min(width_96, key=lambda a: (network_cost(a, 2).flops, network_cost(a, 2).params))
    assert str(pick.arch) == "L3_H96_A4_R2.0" and pick.tied == len(width_96) - 1 and pick.candidates == len(within)
    assert select([space], {space: path}, 1e6, ids, teacher_network()) is None


@pytest.mark.slow  # about 90 s on one loaded CPU core: four SuperLMs, selection over 400 students
def test_headline_command_writes_both_tables(tmp_path, monkeypatch, data_root):
    corpus = TokenCorpus(train=torch.randint(1000, 5000, (16, 16), dtype=torch.int32),
                         heldout=torch.randint(1000, 5000, (8, 16), dtype=torch.int32), seq_len=16)  # fmt: skip
    corpus.train[:, 0] = corpus.heldout[:, 0] = 101
    monkeypatch.setattr(run_module, "load_corpus", lambda *a, **k: corpus)
    out = tmp_path / "headline"
    result = runner.invoke(app, [str(a) for a in (
        "superlm", "headline", "--budgets", "5e6,14e6", "--superlm-steps", "1", "--batch-size", "2",
        "--seq-len", "16", "--score-size", "4", "--tasks", "rte", "--finetune-steps", "1", "--finetune-batch-size",
        "2", "--lrs", "1e-4,1e-3", "--seeds", "2", "--glue-seq-len", "16", "--dev-limit", "4", "--device", "cpu",
        "--out", out, "--data-root", data_root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    steps = {s: load_superlm(out / "superlm" / s / "superlm.pt", s)[1]["step"] for s in
             ("autodistil-base", "autodistil-small", "autodistil-tiny", "autodistil-all")}  # fmt: skip
    assert steps == {"autodistil-base": 1, "autodistil-small": 1, "autodistil-tiny": 1, "autodistil-all": 3}
    rows = pd.read_csv(out / "autodistil_headline.csv", comment="#")
    assert rows["model"].iloc[0] == "majority class" and rows["model"].iloc[1] == "teacher"
    at_5 = rows[rows["budget_m"] == 5]
    assert set(at_5["kind"]) == {"K=3", "K=1", "baseline"} and (at_5["params_m"] <= 5).all()
    assert "teacher, first 1 layers" in set(rows.loc[rows["budget_m"] == 14, "model"])
    assert {"rte_acc", "rte_acc_std", "flags"} <= set(rows.columns)
    picks = pd.read_csv(out / "autodistil_k1_vs_k3.csv", comment="#")
    assert list(picks["kind"]) == ["K=3", "K=1", "K=3", "K=1"] and (picks["loss"] > 0).all()
    assert set(picks.loc[picks["kind"] == "K=1", "space"]) == {"autodistil-all"}
    text = (out / "autodistil_k1_vs_k3.md").read_text()
    assert "1 steps of 2 sequences of 16 tokens for each K=3 sub-space, 3 for the K=1 union" in text
