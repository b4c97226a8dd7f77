"""Scoring many architectures: the scorers a request needs, and worker processes sharing a score cache.

``bench score --all --workers N`` starts N processes (one per visible GPU, round robin, or several on a
CPU) that score the same list through one :class:`ScoreCache`; each starts at another place in the list,
and the cache's claims hand every (architecture, proxy) pair to exactly one of them. Running the same
command again resumes: what is in the cache is looked up, not recomputed.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from proxies import get_proxy
from spaces import get_space

from ._batched import BatchedScorer
from ._cache import ScoreCache
from ._records import ScoringConfig
from ._scorer import Scorer

ENGINES = ("auto", "batched", "loop")
#: What ``auto`` runs on each kind of device: the faster there, as measured by ``benchmarks/speed.py``
#: (docs/scoring.md). On a CPU arithmetic is the cost and the loop is faster; on a GPU launches are.
AUTO_ENGINE = {"cpu": "loop", "cuda": "batched"}
CPU_ENGINE_NOTE = (
    "the batched engine is slower than the one-at-a-time loop on a CPU (docs/scoring.md); "
    "--engine auto runs the loop here, with the same scores"
)


def resolve_engine(engine: str, device: str) -> str:
    """``batched`` or ``loop``: ``engine`` itself, or for ``auto`` the faster on ``device``'s kind."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}. Valid choices: {', '.join(ENGINES)}")
    return AUTO_ENGINE.get(torch.device(device).type, "loop") if engine == "auto" else engine


def make_scorers(
    config: ScoringConfig,
    proxy_names: Sequence[str],
    *,
    teacher: str | None = None,
    cache: ScoreCache | None = None,
    engine: str = "auto",
    chunk_size: int | None = None,
) -> list[Scorer]:
    """One scorer for the proxies that need no teacher (their scores are keyed without one, so any teacher's
    runs share them) and one for those that do, with ``teacher`` or the space's default teacher."""
    from ..teachers import TEACHERS, default_teacher

    engine = resolve_engine(engine, config.device)
    chunk = chunk_size or default_chunk_size(config.device)

    def scorer(cfg: ScoringConfig, names: list[str]) -> Scorer:
        if engine == "batched":
            return BatchedScorer(cfg, names, cache=cache, chunk_size=chunk)
        return Scorer(cfg, names, cache=cache)

    plain = [n for n in proxy_names if not get_proxy(n).needs_teacher]
    aware = [n for n in proxy_names if n not in plain]
    scorers = []
    if plain:
        scorers.append(scorer(replace(config, teacher=None, teacher_weights=None), plain))
    if aware:
        name = TEACHERS.check(teacher) if teacher else default_teacher(config.space)
        scorers.append(scorer(replace(config, teacher=name), aware))
    return scorers


def default_chunk_size(device: str) -> int:
    """Students per forward pass: many on a GPU, where launches are the cost; few on a CPU, where
    arithmetic is, and larger chunks only add gathering and scattering."""
    return 128 if torch.device(device).type == "cuda" else 8


def _worker(
    rank: int,
    workers: int,
    config: ScoringConfig,
    proxy_names: list[str],
    teacher: str | None,
    cache_url: str,
    indices: list[int],
    engine: str,
    chunk_size: int | None,
) -> None:
    device = torch.device(config.device)
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        config = replace(config, device=f"cuda:{rank % torch.cuda.device_count()}")
    space = get_space(config.space)
    start = rank * len(indices) // workers  # start apart, so the first claims rarely collide
    archs = [space.arch_at(i) for i in indices[start:] + indices[:start]]
    cache = ScoreCache(cache_url)
    scorers = make_scorers(config, proxy_names, teacher=teacher, cache=cache, engine=engine, chunk_size=chunk_size)
    # Blocks interleave the scorers; each scorer's chunks run as one stream across them (prefetch included).
    blocks = [archs[offset : offset + 256] for offset in range(0, len(archs), 256)]
    streams = [scorer.score_blocks(blocks) for scorer in scorers]
    for _ in blocks:
        for stream in streams:
            next(stream)


def score_in_workers(
    config: ScoringConfig,
    proxy_names: Sequence[str],
    indices: Sequence[int],
    *,
    workers: int,
    cache_url: str,
    teacher: str | None = None,
    engine: str = "auto",
    chunk_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    poll: float = 1.0,
) -> None:
    """Score ``indices`` x ``proxy_names`` into the cache at ``cache_url`` with ``workers`` processes.

    ``on_progress`` receives the number of finished pairs in the cache now and then. Raises RuntimeError
    naming the workers that failed; what they scored stays in the cache.
    """
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    configs = [s.config.key() for s in make_scorers(config, proxy_names, teacher=teacher, engine="loop")]
    cache = ScoreCache(cache_url)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    args = (workers, config, list(proxy_names), teacher, cache_url, list(indices), engine, chunk_size)
    processes = [context.Process(target=_worker, args=(rank, *args), daemon=False) for rank in range(workers)]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(sum(cache.count(c) for c in configs))
            time.sleep(poll)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    failed = [rank for rank, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"scoring workers {failed} failed; run the same command again to resume")
