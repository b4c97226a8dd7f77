"""Token batches for proxies: what the scorer feeds a text space instead of images."""

from __future__ import annotations

import os

import numpy as np
import torch

from spaces.autodistil import PAD_ID, SEQ_LEN

from ._corpus import load_corpus, token_batch
from ._glue import TASKS, read_task

#: ``corpus``: the held-out split of the distillation corpus (no labels); then the GLUE tasks' training sets.
TEXT_DATASETS = ("corpus", *TASKS)


def trim(ids: torch.Tensor) -> torch.Tensor:
    """``ids`` without the trailing columns that are padding in every row."""
    length = int((ids != PAD_ID).sum(dim=1).max())
    return ids[:, : max(length, 1)]


def encode_pairs(
    texts_a: list[str], texts_b: list[str | None] | None, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and token types (``B x seq_len``) of single sentences or sentence pairs, padded."""
    from ._teacher import load_tokenizer

    tokenizer = load_tokenizer()
    if texts_b is not None and all(t is not None for t in texts_b):
        encoded = tokenizer(
            texts_a, texts_b, truncation=True, max_length=seq_len, padding="max_length", return_tensors="pt"
        )
    else:
        encoded = tokenizer(texts_a, truncation=True, max_length=seq_len, padding="max_length", return_tensors="pt")
    return encoded["input_ids"].long(), encoded["token_type_ids"].long()


def text_proxy_batch(
    dataset: str,
    *,
    batch_size: int,
    seed: int,
    root: str | os.PathLike | None = None,
    seq_len: int = SEQ_LEN,
    labels_needed: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` token sequences (``B x T`` ids, trailing padding trimmed) and their labels, drawn with a
    seeded generator. ``corpus`` has no labels: asking for them is an error naming the labelled datasets."""
    if dataset not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {dataset!r}. Valid choices: {', '.join(TEXT_DATASETS)}")
    if dataset == "corpus":
        if labels_needed:
            raise ValueError(
                f"dataset 'corpus' has no labels, and a proxy asked for them; use one of {', '.join(TASKS)}"
            )
        ids = token_batch(load_corpus(root, seq_len=seq_len), "heldout", batch_size, seed)
        return trim(ids), torch.zeros(batch_size, dtype=torch.long)
    examples = read_task(dataset, "train", root)
    if not 1 <= batch_size <= len(examples):
        raise ValueError(f"batch size must be in 1..{len(examples)} for {dataset}, got {batch_size}")
    chosen = [
        examples[i] for i in np.sort(np.random.default_rng(seed).choice(len(examples), batch_size, replace=False))
    ]
    # Proxies see token ids only, so a pair is one sequence [CLS] a [SEP] b [SEP] without segment ids.
    ids, _ = encode_pairs([e.text_a for e in chosen], [e.text_b for e in chosen], seq_len)
    return trim(ids), torch.tensor([e.label for e in chosen], dtype=torch.long)
