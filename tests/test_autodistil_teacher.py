"""A configurable teacher: any BERT-style model folder, read from $BENCH_LM_TEACHER, with grids scaled to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.lm import teacher_folder
from spaces.autodistil import MINILM_SHAPE, SUBSPACES, TeacherShape, scaled_grids, shape_of

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, torch
from bench.lm import load_hf_teacher, teacher_network, teacher_state, load_tokenizer
from spaces import get_space
from spaces.autodistil import TEACHER_ARCH, HEAD_SIZE, SuperLM, relation_loss, teacher_relations, sliced_student
batch = load_tokenizer()(["a first sentence", "and a second, longer one"], padding=True, return_tensors="pt")
with torch.no_grad():
    expected = load_hf_teacher()(**batch).last_hidden_state
    mine = teacher_network().forward_features(batch["input_ids"], batch["token_type_ids"])
tiny = get_space("autodistil-tiny")
arch = tiny.arch_at(len(tiny) - 1)
student = sliced_student(teacher_state(), TEACHER_ARCH.layers, arch)
qkv = mine.qkv
loss = relation_loss(teacher_relations(qkv, mine.mask), student.forward_features(batch["input_ids"]).qkv, mine.mask)
superlm = SuperLM.from_teacher("autodistil-all", teacher_state(), TEACHER_ARCH.layers)
print(json.dumps({"teacher": str(TEACHER_ARCH), "head_size": HEAD_SIZE, "tiny_hidden": list(tiny.grid.hidden),
                  "deviation": float((mine.pre_pool - expected).abs().max()), "loss": float(loss),
                  "superlm": str(superlm.arch), "sizes": [len(get_space(s)) for s in
                  ("autodistil-base", "autodistil-small", "autodistil-tiny", "autodistil-all")]}))
"""


def _bert_folder(tmp_path: Path) -> Path:
    """A randomly initialised BERT of another shape (4 layers, hidden 256, 4 heads of 64) with the default
    teacher's tokenizer."""
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    config = BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    BertModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (teacher_folder() / name).is_file():
            shutil.copy(teacher_folder() / name, folder / name)
    return folder


def test_default_shape_and_grids_are_minilm():
    assert scaled_grids(MINILM_SHAPE) == SUBSPACES
    base = scaled_grids(TeacherShape(12, 768, 12, 64, 3072, 30522, 512, 2, 1e-12))["base"]
    assert base.layers == (8, 10, 12) and base.hidden == (576, 640, 704, 768) and base.heads == (8, 10, 12)


def test_folders_that_are_not_bert_encoders_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no config\.json"):
        shape_of(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type is 'gpt2'; a BERT-style teacher has 'bert'"):
        shape_of(tmp_path)


@pytest.mark.slow  # builds, saves and reloads a BERT in a fresh process (about 30 s on one loaded core)
def test_another_bert_folder_becomes_the_teacher(tmp_path):
    folder = _bert_folder(tmp_path)
    shape = shape_of(folder)
    assert (shape.layers, shape.hidden, shape.heads, shape.head_size) == (4, 256, 4, 64)
    env = {**os.environ, "BENCH_LM_TEACHER": str(folder), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["teacher"] == "L4_H256_A4_R4.0" and result["head_size"] == 64
    assert result["deviation"] < 1e-4 and result["loss"] > 0
    assert result["tiny_hidden"] == [64, 88, 104] and result["superlm"] == "L4_H256_A4_R3.5"
    assert result["sizes"][3] == sum(result["sizes"][:3])
