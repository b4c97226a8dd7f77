"""The task-agnostic distillation corpus: generic text (Wikipedia) as token ids, GLUE sentences only on request.

Wikipedia: the MediaWiki XML dump ``<data root>/text/enwiki-sample-pages.xml.bz2``; articles (namespace 0,
not redirects) with markup stripped, tokenised and cut into full sequences ``[CLS] ... [SEP]``. That is the
whole corpus by default, as AutoDistil distils on generic text only. GLUE (opt-in, ``glue=N``):
at most N sentences of the four tasks' training sets (labels unused), one padded sequence each; these are
the sentences the students are later evaluated on, so a corpus with them is named so in its ``sources``.
One document in ten (every tenth article, every tenth sentence) is held out: the ``superlm`` proxy and
the ground truth's held-out loss read only those. The tokenised corpus is cached under ``$BENCH_CACHE_DIR``
(default ``~/.cache/diswot-bench``).
"""

from __future__ import annotations

import bz2
import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spaces.autodistil import PAD_ID, SEQ_LEN

from ..data import cache_dir, resolve_data_root
from ._glue import TASKS, read_task

WIKI_FILE = Path("text") / "enwiki-sample-pages.xml.bz2"
HELD_OUT_EVERY = 10
SPLITS = ("train", "heldout")
_CORPUS_VERSION = 3


def strip_markup(text: str) -> str:
    """Running text of a MediaWiki article: templates, tables, references, files, categories, tags and
    emphasis removed, links replaced by their label, headings and list markers dropped."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", " ", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", " ", text, flags=re.S)
    # Templates and tables nest: strip innermost first until none is left.
    for pattern in (r"\{\{[^{}]*\}\}", r"\{\|[^{}]*?\|\}"):
        while True:
            text, n = re.subn(pattern, " ", text, flags=re.S)
            if not n:
                break
    text = re.sub(
        r"\[\[(?:File|Image|Category|[a-z]{2,3}(?:-[a-z]+)?):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", " ", text
    )
    text = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://\S+\s*([^\]]*)\]", r"\1", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"'{2,}", "", text)
    text = text.replace("&nbsp;", " ")
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("=", "|", "!", "{", "}")):
            continue
        lines.append(re.sub(r"^[*#:;]+\s*", "", line))
    text = re.sub(r"[ \t]+", " ", "\n".join(lines))
    return re.sub(r" ([.,;:!?)])", r"\1", text).strip()  # a removed template or reference leaves no gap


def wiki_articles(path: str | os.PathLike) -> Iterator[str]:
    """The markup-stripped text of every article of a MediaWiki XML dump (bz2), in dump order."""
    with bz2.open(path, "rb") as fh:
        for _, element in ET.iterparse(fh):
            if not element.tag.endswith("}page"):
                continue
            ns = element.find("{*}ns")
            text = element.find("{*}revision/{*}text")
            redirect = element.find("{*}redirect")
            if ns is not None and ns.text == "0" and redirect is None and text is not None and text.text:
                stripped = strip_markup(text.text)
                if stripped:
                    yield stripped
            element.clear()


def glue_sentences(root: str | os.PathLike | None = None) -> list[str]:
    """Every sentence of the GLUE tasks' training sets (labels unused), in task and file order."""
    sentences = []
    for task in TASKS:
        for example in read_task(task, "train", root):
            sentences.append(example.text_a)
            if example.text_b is not None:
                sentences.append(example.text_b)
    return sentences


@dataclass(frozen=True)
class TokenCorpus:
    """Token ids (``N x seq_len``, int32, 0 = padding) of each split."""

    train: torch.Tensor
    heldout: torch.Tensor
    seq_len: int
    #: What the sequences came from, e.g. ``("wikipedia:enwiki-sample-pages.xml.bz2",)``; GLUE sentences
    #: appear as ``glue-train-sentences:N``.
    sources: tuple[str, ...] = (f"wikipedia:{WIKI_FILE.name}",)

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise ValueError(f"unknown corpus split {name!r}. Valid choices: {', '.join(SPLITS)}")
        return self.train if name == "train" else self.heldout


def _chunks(ids: list[int], seq_len: int, cls: int, sep: int) -> Iterator[list[int]]:
    body = seq_len - 2
    for start in range(0, len(ids), body):
        piece = ids[start : start + body]
        if len(piece) >= body // 4:  # a short tail carries little relation structure
            yield [cls, *piece, sep]


def _padded(rows: list[list[int]], seq_len: int) -> torch.Tensor:
    out = np.full((len(rows), seq_len), PAD_ID, dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def check_glue_count(glue: int) -> int:
    if glue < 0:
        raise ValueError(f"--glue-sentences must be at least 0 (0: generic text only), got {glue}")
    return glue


def build_corpus(root: str | os.PathLike | None = None, *, seq_len: int = SEQ_LEN, glue: int = 0) -> TokenCorpus:
    """Tokenise the corpus (see the module docstring): the Wikipedia text whole and, where ``glue`` is
    positive, every n-th GLUE training sentence so that at most ``glue`` are added."""
    from ._teacher import load_tokenizer

    if seq_len < 8:
        raise ValueError(f"sequence length must be at least 8 tokens, got {seq_len}")
    data_root = resolve_data_root(root)
    wiki = data_root / WIKI_FILE
    if not wiki.is_file():
        raise FileNotFoundError(f"the Wikipedia sample for distillation is not at {wiki}")
    tokenizer = load_tokenizer()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    splits: dict[str, list[list[int]]] = {"train": [], "heldout": []}
    for n, article in enumerate(wiki_articles(wiki)):
        ids = tokenizer(article, add_special_tokens=False)["input_ids"]
        splits["heldout" if n % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else "train"].extend(
            _chunks(ids, seq_len, cls, sep)
        )
    sources = [f"wikipedia:{WIKI_FILE.name}"]
    if check_glue_count(glue):
        sentences = glue_sentences(root)
        if len(sentences) > glue:
            sentences = sentences[:: -(-len(sentences) // glue)]
        encoded = tokenizer(sentences, truncation=True, max_length=seq_len)["input_ids"]
        for n, ids in enumerate(encoded):
            splits["heldout" if n % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else "train"].append(ids)
        sources.append(f"glue-train-sentences:{len(sentences)}")
    return TokenCorpus(
        train=_padded(splits["train"], seq_len),
        heldout=_padded(splits["heldout"], seq_len),
        seq_len=seq_len,
        sources=tuple(sources),
    )


def load_corpus(root: str | os.PathLike | None = None, *, seq_len: int = SEQ_LEN, glue: int = 0) -> TokenCorpus:
    """:func:`build_corpus`, cached on disk by its sources' sizes and times and the settings."""
    data_root = resolve_data_root(root)
    check_glue_count(glue)
    files = [data_root / WIKI_FILE]
    if glue:
        files += [data_root / "glue" / t.folder / "train.tsv" for t in TASKS.values()]
    stamp = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files if p.is_file()]
    key = hashlib.sha1(repr((_CORPUS_VERSION, stamp, seq_len, glue)).encode()).hexdigest()[:16]
    path = cache_dir() / f"corpus-{key}.pt"
    if path.is_file():
        data = torch.load(path, weights_only=True)
        return TokenCorpus(train=data["train"], heldout=data["heldout"], seq_len=seq_len,
                           sources=tuple(data["sources"]))  # fmt: skip
    corpus = build_corpus(root, seq_len=seq_len, glue=glue)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"train": corpus.train, "heldout": corpus.heldout, "sources": list(corpus.sources)}, tmp)
    tmp.replace(path)
    return corpus


def token_batch(corpus: TokenCorpus, split: str, batch_size: int, seed: int) -> torch.Tensor:
    """``batch_size`` sequences of one split drawn without replacement by a seeded generator, as int64."""
    rows = corpus.split(split)
    if not 1 <= batch_size <= len(rows):
        raise ValueError(f"batch size must be in 1..{len(rows)} (the {split} split), got {batch_size}")
    index = np.sort(np.random.default_rng(seed).choice(len(rows), size=batch_size, replace=False))
    return rows[torch.from_numpy(index)].long()
