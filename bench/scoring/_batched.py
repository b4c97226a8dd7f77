"""The batched scorer: many students per forward pass, for the proxies that only read a student's features.

A proxy flagged ``feature_only`` (DisWOT and its terms, the KD-based proxies) depends on a student only
through one ``forward_features`` on the batch and the student's classifier. For those, the space's stacked
network (e.g. :class:`spaces.nb201.StackedNB201`) runs a chunk of students at once. A proxy's batched form
(:meth:`proxies.Proxy.score_batch`) then scores the whole chunk as one vector on the device; all the
chunk's vectors are read back at once, one host sync a chunk. A proxy without a batched form gets each
student as a :class:`PrecomputedStudent` whose features are already there, handed to its own ``score``.
Every other proxy, and every space without a stacked network, is scored one student at a time.

A CUDA out-of-memory error halves the chunk and retries it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from proxies import ProxyInputs, StudentBatch
from spaces import Features, StackedNetwork

from ._cache import ScoreCache
from ._dispatch import read_back
from ._records import OK, ScoreRecord, ScoringConfig
from ._scorer import PrecomputedStudent, Scorer, network_seed


def _student_features(stacked: Any, i: int) -> Features:
    return Features(
        stages=[s[i] for s in stacked.stages],
        pre_pool=stacked.pre_pool[i],
        embedding=stacked.embedding[i],
        logits=stacked.logits[i],
    )


class BatchedScorer(Scorer):
    """A :class:`Scorer` that shares forward passes between up to ``chunk_size`` students."""

    def __init__(
        self,
        config: ScoringConfig,
        proxies: Sequence[str],
        *,
        cache: ScoreCache | None = None,
        chunk_size: int = 64,
    ) -> None:
        super().__init__(config, proxies, cache=cache)
        if chunk_size < 1:
            raise ValueError(f"chunk size must be positive, got {chunk_size}")
        self.chunk_size = chunk_size
        self.batched_proxies = [n for n, p in self.proxies.items() if p.feature_only]
        #: On a GPU, build the next chunk in a second thread while one runs (off: everything on this thread,
        #: e.g. for counting its operators, which a dispatch mode sees on its own thread only).
        self.prefetch = True

    def stack(self, archs: Sequence[Any]) -> StackedNetwork | None:
        seeds = [network_seed(self.config.seed, self.space.to_str(a)) for a in archs]
        return self.space.stacked(archs, seeds, self.num_classes, init=self.config.init, device=self.device)

    def _score_chunk(
        self, archs: Sequence[Any], names: Sequence[str], prepared: StackedNetwork | None = None
    ) -> list[ScoreRecord] | None:
        """Records of ``names`` for every arch of the chunk, or None if the space cannot stack them.

        ``prepared`` is the chunk's stacked network when it was built ahead (see :meth:`score_many`). Every
        proxy with a batched form scores the whole chunk as one vector; the vectors are read back together,
        the chunk's one host sync. A proxy without one, and a student whose batched value is not finite,
        are scored one at a time from the precomputed features, as :meth:`Scorer.compute_shared` would.
        """
        inputs = {name: self.inputs_for(name) for name in names}
        images = self.inputs().images
        start = time.perf_counter()
        stacked_net = prepared if prepared is not None else self.stack(archs)
        if stacked_net is None:
            return None
        with torch.no_grad(), self.numerics():
            stacked = stacked_net.forward_features(images)
            students = StudentBatch(stacked, stacked_net.classifier, stacked_net.classifier_bias)
            vectors = {name: self._score_batch(name, students, inputs[name]) for name in names}
        batched = [name for name in names if vectors[name] is not None]
        values = dict(zip(batched, read_back(torch.stack([vectors[n].double() for n in batched])))) if batched else {}
        share = (time.perf_counter() - start) / (len(archs) * len(names))
        records = []
        for i, arch in enumerate(archs):
            student = None
            for name in names:
                value = values[name][i] if name in values else math.nan
                if math.isfinite(value):
                    records.append(self._ok_record(arch, name, value, share))
                    continue
                if student is None:
                    student = PrecomputedStudent(_student_features(stacked, i), images, stacked_net.classifier_of(i))
                score = functools.partial(self.proxies[name].score, student, inputs[name])
                records.append(self.record(arch, name, score, share))
        return records

    def _score_batch(self, name: str, students: StudentBatch, inputs: ProxyInputs) -> torch.Tensor | None:
        """The chunk's scores by ``name``'s batched form, or None to score its students one at a time."""
        try:
            return self.proxies[name].score_batch(students, inputs)
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError, ArithmeticError, IndexError):
            return None  # one at a time, each record says why

    def _ok_record(self, arch: Any, name: str, value: float, seconds: float) -> ScoreRecord:
        return ScoreRecord(
            arch=self.space.to_str(arch),
            proxy=name,
            score=value,
            seconds=seconds,
            status=OK,
            error="",
            index=self._index(arch),
            config=self.config_key,
        )

    def _chunks_with_retry(
        self, archs: list[Any], names: list[str], prepared: Future | None = None
    ) -> list[ScoreRecord] | None:
        size = min(self.chunk_size, len(archs))
        records: list[ScoreRecord] = []
        position = 0
        while position < len(archs):
            chunk = archs[position : position + size]
            try:
                ahead = prepared.result() if prepared is not None and len(chunk) == len(archs) else None
                result = self._score_chunk(chunk, names, ahead)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if size == 1:
                    raise
                size = max(1, size // 2)
                continue
            finally:
                prepared = None
            if result is None:
                return None
            records.extend(result)
            position += len(chunk)
        return records

    def score_many(
        self,
        archs: Sequence[Any],
        proxies: Sequence[str] | None = None,
        *,
        on_record: Callable[[ScoreRecord], None] | None = None,
    ) -> list[ScoreRecord]:
        return [r for block in self.score_blocks([archs], proxies, on_record=on_record) for r in block]

    def score_blocks(
        self,
        blocks: Sequence[Sequence[Any]],
        proxies: Sequence[str] | None = None,
        *,
        on_record: Callable[[ScoreRecord], None] | None = None,
    ) -> Iterator[list[ScoreRecord]]:
        """:meth:`score_many` of each block in turn, yielding each block's records as it is done.

        The chunks of all blocks form one stream: on a GPU the next chunk is claimed and its students built
        while the current one runs, across the blocks' borders too.
        """
        names = list(proxies) if proxies is not None else list(self.proxies)
        batched = [n for n in names if n in self.batched_proxies]
        strings = [[self.space.to_str(a) for a in block] for block in blocks]
        done: dict[tuple[str, str], ScoreRecord] = {}
        emitted: set[tuple[str, str]] = set()

        def emit(record: ScoreRecord) -> None:
            done[record.arch, record.proxy] = record
            emitted.add((record.arch, record.proxy))
            if on_record is not None:
                on_record(record)

        # Claim a chunk's students just before scoring them, so concurrent workers split the work.
        windows = [
            (b, list(zip(block[i : i + self.chunk_size], strings[b][i : i + self.chunk_size])))
            for b, block in enumerate(blocks)
            for i in range(0, len(block), self.chunk_size)
        ] if batched else []  # fmt: skip
        looked_up: set[int] = set()
        ahead = ThreadPoolExecutor(max_workers=1) if self.device.type == "cuda" and self.prefetch else None

        def look_up(b: int) -> None:
            if b not in looked_up and self.cache is not None:
                done.update(self.cache.get_many(self.config_key, strings[b], names))
            looked_up.add(b)

        def claim(position: int) -> tuple[list[Any], Future | None]:
            if position >= len(windows):
                return [], None
            look_up(windows[position][0])
            chunk = self._claim_chunk(windows[position][1], batched, done)
            future = ahead.submit(self.stack, chunk) if ahead is not None and chunk else None
            return chunk, future

        following: tuple[list[Any], Future | None] = ([], None)
        try:
            following = claim(0)
            for b, block in enumerate(blocks):
                look_up(b)
                while windows and windows[0][0] == b:
                    windows.pop(0)
                    chunk, prepared = following
                    following = claim(0)
                    if chunk:
                        self._score_claimed(chunk, batched, prepared, emit, done)
                yield self._assemble(block, strings[b], names, done, emitted, emit)
        finally:
            self._release_unscored(following[0], batched, done)
            if ahead is not None:
                ahead.shutdown(wait=True)

    def _score_claimed(
        self,
        chunk: list[Any],
        names: list[str],
        prepared: Future | None,
        emit: Callable[[ScoreRecord], None],
        done: dict[tuple[str, str], ScoreRecord],
    ) -> None:
        try:
            records = self._chunks_with_retry(chunk, names, prepared)
            if records is None:  # the space has no stacked network: one at a time after all
                records = [self.compute(a, n) for a in chunk for n in names]
            if self.cache is not None:
                self.cache.put_many(records)
            for record in records:
                emit(record)
        finally:
            self._release_unscored(chunk, names, done)

    def _assemble(
        self,
        block: Sequence[Any],
        strings: list[str],
        names: list[str],
        done: dict[tuple[str, str], ScoreRecord],
        emitted: set[tuple[str, str]],
        emit: Callable[[ScoreRecord], None],
    ) -> list[ScoreRecord]:
        """The block's records in (architecture, proxy) order, scoring what no chunk did one at a time."""
        out = []
        for arch, arch_str in zip(block, strings):
            for name in names:
                record = done.get((arch_str, name))
                if record is None:  # one-at-a-time proxies, and pairs another worker held
                    record = self._score_through_cache(arch, name) if self.cache else self.compute(arch, name)
                if (arch_str, name) not in emitted:
                    emit(record)
                out.append(record)
        return out

    def _release_unscored(self, chunk: list[Any], names: list[str], done: dict[tuple[str, str], ScoreRecord]) -> None:
        """Give back the claims of ``chunk`` that no record answered (after an interruption)."""
        if self.cache is None:
            return
        for arch in chunk:
            arch_str = self.space.to_str(arch)
            for n in names:
                if (arch_str, n) not in done:
                    self.cache.release(self.config_key, arch_str, n)

    def _claim_chunk(
        self, window: list[tuple[Any, str]], names: list[str], done: dict[tuple[str, str], ScoreRecord]
    ) -> list[Any]:
        """The students of ``window`` this worker now holds every missing batched score of."""
        wanted = {arch_str: [n for n in names if (arch_str, n) not in done] for _, arch_str in window}
        if self.cache is None:
            return [arch for arch, arch_str in window if wanted[arch_str]]
        items = [(arch_str, n, self._index(arch)) for arch, arch_str in window for n in wanted[arch_str]]
        won = self.cache.claim_many(self.config_key, items)
        chunk = []
        for arch, arch_str in window:
            mine = [n for n in wanted[arch_str] if (arch_str, n) in won]
            if wanted[arch_str] and len(mine) == len(wanted[arch_str]):
                chunk.append(arch)
            else:  # another worker holds part of it: leave all of it to the one-pair cache path
                for n in mine:
                    self.cache.release(self.config_key, arch_str, n)
        return chunk
