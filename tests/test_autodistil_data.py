"""GLUE loaders and metrics, the Wikipedia corpus, fine-tuning, the ground-truth table and the CLI."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.ground_truth import load_ground_truth
from bench.lm import (
    TASKS,
    FinetuneSettings,
    GroundTruthSettings,
    TokenCorpus,
    build_ground_truth,
    finetune,
    glue_metrics,
    read_task,
    strip_markup,
    teacher_state,
    text_proxy_batch,
    wiki_articles,
)
from bench.lm import _ground_truth as gt_module
from spaces import get_space
from spaces.autodistil import SUPERLM_DIR_ENV, StudentArch, SuperLM, TransformerStudent

runner = CliRunner()
TINY = "autodistil-tiny"
#: Examples of each split (MRPC's train file has 3,667 rows after its header).
SIZES = {"sst2": (67349, 872), "cola": (8551, 1043), "mrpc": (3667, 408), "rte": (2490, 277)}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("task", list(TASKS))
def test_glue_loaders_parse_every_task(task, data_root):
    for split, size in zip(("train", "dev"), SIZES[task]):
        examples = read_task(task, split, data_root)
        assert len(examples) == size
        assert {e.label for e in examples} == {0, 1}
        pair = task in ("mrpc", "rte")
        assert all((e.text_b is not None) == pair and e.text_a for e in examples)
    first = read_task(task, "train", data_root)[0]
    assert "Quality" not in first.text_a and first.text_a.strip() != "sentence"  # headers are skipped, BOM too
    if task == "cola":  # headerless: the first line is an example
        assert first.text_a.startswith("Our friends won't buy this analysis")
    if task == "rte":
        assert first.label == 1  # not_entailment


def test_glue_errors_name_the_choices(data_root):
    with pytest.raises(ValueError, match="Valid choices: sst2, cola, mrpc, rte"):
        read_task("qnli", "train", data_root)
    with pytest.raises(ValueError, match="Valid choices: train, dev"):
        read_task("rte", "test", data_root)


def test_glue_metrics():
    labels = [1, 1, 0, 0, 1, 0]
    predictions = [1, 0, 0, 1, 1, 0]
    assert glue_metrics("sst2", predictions, labels) == {"acc": pytest.approx(100 * 4 / 6)}
    assert glue_metrics("mrpc", predictions, labels)["f1"] == pytest.approx(100 * 2 * 2 / (2 * 2 + 1 + 1))
    assert glue_metrics("cola", predictions, labels)["mcc"] == pytest.approx(100 / 3)
    assert glue_metrics("cola", [1] * 6, labels)["mcc"] == 0.0


def test_wikipedia_markup_is_stripped(data_root):
    text = (
        "'''Anarchism''' is a [[political philosophy|philosophy]]{{sfn|Ward|2004}}<ref>x</ref>.\n"
        "== History ==\n* [[Item]]"
    )
    assert strip_markup(text) == "Anarchism is a philosophy.\nItem"
    articles = list(itertools.islice(wiki_articles(data_root / "text" / "enwiki-sample-pages.xml.bz2"), 3))
    assert len(articles) == 3
    for article in articles:
        assert "[[" not in article and "{{" not in article and "<ref" not in article and len(article) > 200


def test_text_proxy_batches(data_root):
    ids, labels = text_proxy_batch("mrpc", batch_size=6, seed=3, root=data_root)
    again, _ = text_proxy_batch("mrpc", batch_size=6, seed=3, root=data_root)
    assert torch.equal(ids, again) and ids.dtype == torch.long and (ids[:, 0] == 101).all()
    assert (ids == 102).sum(dim=1).min() == 2  # a pair: two [SEP]
    assert set(labels.tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="Valid choices: corpus, sst2"):
        text_proxy_batch("wiki", batch_size=2, seed=0)


def tiny_settings(**kwargs) -> FinetuneSettings:
    return FinetuneSettings(**{"steps": 2, "batch_size": 4, "seq_len": 24, "dev_limit": 16, **kwargs})


def test_finetune_leaves_the_student_alone_and_reports_metrics(data_root):
    torch.manual_seed(0)
    student = TransformerStudent(StudentArch(1, 64, 2, 1.5))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    result = finetune(student, "mrpc", tiny_settings(), root=data_root)
    assert set(result.metrics) == {"f1", "acc"} and 0 <= result.metrics["acc"] <= 100
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert result.train_seconds > 0


def test_ground_truth_table_resumes_and_loads(tmp_path, monkeypatch, data_root):
    corpus = TokenCorpus(train=torch.randint(1000, 5000, (16, 16), dtype=torch.int32),
                         heldout=torch.randint(1000, 5000, (8, 16), dtype=torch.int32), seq_len=16)  # fmt: skip
    corpus.train[:, 0] = corpus.heldout[:, 0] = 101
    monkeypatch.setattr(gt_module, "load_corpus", lambda *a, **k: corpus)
    settings = GroundTruthSettings(distil_steps=2, distil_batch_size=2, heldout_size=4,
                                   finetune=tiny_settings(), tasks=("rte", "cola"))  # fmt: skip
    tiny = get_space(TINY)
    archs = [tiny.arch_at(0), tiny.arch_at(1)]
    out = tmp_path / "gt.csv"
    seen = []
    build_ground_truth(TINY, archs[:1], settings, out=out, device="cpu", data_root=data_root)
    build_ground_truth(TINY, archs, settings, out=out, device="cpu", data_root=data_root,
                       on_student=lambda name, row: seen.append((name, row is None)))  # fmt: skip
    assert seen == [(tiny.to_str(archs[0]), True), (tiny.to_str(archs[1]), False)]  # the first was kept
    table = pd.read_csv(out)
    assert len(table) == 2 * len(tiny.num_classes)
    for source in (f"autodistil:{out}", f"csv:{out}"):
        truth = load_ground_truth(source, space=TINY)
        assert set(truth.datasets()) == set(tiny.num_classes)
        assert truth.accuracy("corpus", "glue_avg").index.tolist() == [tiny.to_str(a) for a in archs]
    assert load_ground_truth(f"autodistil:{out}", space=TINY).default_metric == "glue_avg"
    row = table.iloc[0]
    assert row["distil_loss"] > 0 and row["neg_distil_loss"] == -row["distil_loss"]
    assert row["glue_avg"] == pytest.approx((row["rte_acc"] + row["cola_mcc"]) / 2)
    with pytest.raises(ValueError, match="other settings"):
        build_ground_truth(TINY, archs, GroundTruthSettings(distil_steps=3, tasks=("rte",)), out=out, device="cpu")


def test_cli_lists_and_describes_the_spaces():
    spaces = invoke("spaces")
    assert spaces.exit_code == 0 and "autodistil-tiny" in spaces.stdout and "256" in spaces.stdout
    arch = invoke("arch", "--space", TINY, "L2_H96_A3_R2.5", "--json")
    assert arch.exit_code == 0, arch.output
    record = json.loads(arch.stdout)
    assert record["arch"] == "L2_H96_A3_R2.5" and record["params"]["corpus"] > 0
    listed = invoke("proxies", "lm_*")
    assert "lm_attention" in listed.stdout and "teacher" in listed.stdout
    bad = invoke("superlm", "train", "--space", "autodistil-huge", "--steps", "1")
    assert bad.exit_code == 2 and "Valid choices: autodistil-base" in bad.stderr


def test_cli_search_and_score_with_the_superlm(tmp_path, monkeypatch, data_root):
    from bench.lm import teacher_state
    from spaces.autodistil import SuperLM

    monkeypatch.setenv(SUPERLM_DIR_ENV, str(tmp_path / "superlm"))
    path = tmp_path / "superlm" / TINY / "superlm.pt"
    path.parent.mkdir(parents=True)
    torch.save({"space": TINY, "arch": "L4_H160_A6_R3.0", "step": 0,
                "model": SuperLM.from_teacher(TINY, teacher_state(), 6).state_dict()}, path)  # fmt: skip
    cache = f"sqlite:///{tmp_path / 'scores.db'}"
    run = invoke("run", "--space", TINY, "--proxy", "superlm", "--sampler", "tpe", "--n-trials", "3",
                 "--dataset", "rte", "--batch-size", "4", "--max-params", "4.4e6", "--out", tmp_path / "run",
                 "--cache", cache, "--no-progress", "--data-root", data_root)  # fmt: skip
    assert run.exit_code == 0, run.output
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(trials) == 3 and trials["score"].notna().all() and (trials["score"] < 0).all()
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["space"] == TINY and best["params"] <= 4.4e6
    scores = tmp_path / "scores.csv"
    score = invoke("score", "--space", TINY, "--dataset", "rte", "--proxy", "superlm,nonembed_params",
                   "--arch", "0", "--arch", "L2_H96_A3_R2.5", "--arch", "255", "--batch-size", "4",
                   "--out", scores, "--data-root", data_root)  # fmt: skip
    assert score.exit_code == 0, score.output
    frame = pd.read_csv(scores)
    assert (frame["status"] == "ok").all() and len(frame) == 6


def test_cli_ground_truth_and_compare(tmp_path, monkeypatch, data_root):
    budget = ["--finetune-steps", "1", "--finetune-batch-size", "2", "--glue-seq-len", "16", "--dev-limit", "4",
              "--tasks", "rte", "--device", "cpu", "--data-root", data_root]  # fmt: skip
    table = tmp_path / "gt.csv"
    made = invoke("superlm", "ground-truth", "--space", TINY, "--arch", "L1_H64_A2_R1.5", "--distil-steps", "0",
                  "--heldout-size", "2", "--out", table, *budget)  # fmt: skip
    assert made.exit_code == 0, made.output
    assert pd.read_csv(table)["arch"].unique().tolist() == ["L1_H64_A2_R1.5"]
    monkeypatch.setenv(SUPERLM_DIR_ENV, str(tmp_path / "superlm"))
    missing = invoke("superlm", "compare", "--arch", f"{TINY}:0", "--out", tmp_path / "cmp", *budget)
    assert missing.exit_code == 2 and "bench superlm train --space autodistil-tiny" in missing.stderr
    path = tmp_path / "superlm" / TINY / "superlm.pt"
    path.parent.mkdir(parents=True)
    torch.save({"space": TINY, "arch": "L4_H160_A6_R3.0", "step": 3,
                "model": SuperLM.from_teacher(TINY, teacher_state(), 6).state_dict()}, path)  # fmt: skip
    compared = invoke("superlm", "compare", "--arch", f"{TINY}:0", "--truncated", "1", "--out", tmp_path / "cmp",
                      *budget)  # fmt: skip
    assert compared.exit_code == 0, compared.output
    rows = pd.read_csv(tmp_path / "cmp" / "autodistil_compare.csv", comment="#")
    assert rows["arch"].tolist() == ["L6_H384_A12_R4.0", "L1_H384_A12_R4.0", "L1_H64_A2_R1.5"]
    assert {"params_m", "gflops", "rte_acc", "glue_avg"} <= set(rows.columns)
    assert (tmp_path / "cmp" / "autodistil_compare.tex").read_text().count("\\num") > 5
