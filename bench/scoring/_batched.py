"""The batched scorer: many students per forward pass, for the proxies that only read a student's features.

A proxy flagged ``feature_only`` (DisWOT and its terms, the KD-based proxies) depends on a student only
through one ``forward_features`` on the batch and the student's classifier. For those, the space's stacked
network (e.g. :class:`spaces.nb201.StackedNB201`) runs a chunk of students at once; each student is then
handed to the proxy's own ``score`` as a :class:`PrecomputedStudent` whose features are already there. So
the scores come from the very code the one-at-a-time scorer runs, and only the forward pass is shared.
Every other proxy, and every space without a stacked network, is scored one student at a time.

A CUDA out-of-memory error halves the chunk and retries it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from proxies import ProxyError, ProxyInputs
from spaces import FeatureNetwork, Features, StackedNetwork

from ._cache import ScoreCache
from ._records import FAILED, NONFINITE, OK, ScoreRecord, ScoringConfig
from ._scorer import Scorer, network_seed


class PrecomputedStudent(FeatureNetwork):
    """A student whose features on one batch are already computed; any other input is refused."""

    def __init__(self, features: Features, images: torch.Tensor, classifier: torch.nn.Linear) -> None:
        super().__init__()
        self._features = features
        self._images = images
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor) -> Features:
        if x is not self._images:
            raise ProxyError("a precomputed student only answers for the batch it was computed on")
        return self._features


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

    def stack(self, archs: Sequence[Any]) -> StackedNetwork | None:
        seeds = [network_seed(self.config.seed, self.space.to_str(a)) for a in archs]
        return self.space.stacked(archs, seeds, self.num_classes, init=self.config.init, device=self.device)

    def _score_chunk(self, archs: Sequence[Any], names: Sequence[str]) -> list[ScoreRecord] | None:
        """Records of ``names`` for every arch of the chunk, or None if the space cannot stack them."""
        inputs = {name: self.inputs_for(name) for name in names}
        images = self.inputs().images
        start = time.perf_counter()
        stacked_net = self.stack(archs)
        if stacked_net is None:
            return None
        with torch.no_grad():
            stacked = stacked_net.forward_features(images)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        shared = (time.perf_counter() - start) / len(archs)  # each student's share of the forward pass
        records = []
        for i, arch in enumerate(archs):
            student = PrecomputedStudent(_student_features(stacked, i), images, stacked_net.classifier_of(i))
            for name in names:
                records.append(self._score_precomputed(arch, name, student, inputs[name], shared))
        return records

    def _score_precomputed(
        self, arch: Any, name: str, student: PrecomputedStudent, inputs: ProxyInputs, shared: float
    ) -> ScoreRecord:
        start = time.perf_counter()
        score, error = None, ""
        try:
            value = float(self.proxies[name].score(student, inputs))
            status = OK if math.isfinite(value) else NONFINITE
            score = value if status == OK else None
            error = "" if status == OK else f"score was {value}"
        except ProxyError as err:
            status, error = FAILED, str(err)
        except (RuntimeError, ValueError, ArithmeticError, IndexError) as err:
            status, error = FAILED, f"{type(err).__name__}: {err}"
        return ScoreRecord(
            arch=self.space.to_str(arch),
            proxy=name,
            score=score,
            seconds=shared + time.perf_counter() - start,
            status=status,
            error=error,
            index=self._index(arch),
            config=self.config_key,
        )

    def _chunks_with_retry(self, archs: list[Any], names: list[str]) -> list[ScoreRecord] | None:
        size = min(self.chunk_size, len(archs))
        records: list[ScoreRecord] = []
        position = 0
        while position < len(archs):
            chunk = archs[position : position + size]
            try:
                result = self._score_chunk(chunk, names)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if size == 1:
                    raise
                size = max(1, size // 2)
                continue
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
        names = list(proxies) if proxies is not None else list(self.proxies)
        batched = [n for n in names if n in self.batched_proxies]
        strings = [self.space.to_str(a) for a in archs]
        done: dict[tuple[str, str], ScoreRecord] = (
            self.cache.get_many(self.config_key, strings, names) if self.cache else {}
        )
        emitted: set[tuple[str, str]] = set()

        def emit(record: ScoreRecord) -> None:
            done[record.arch, record.proxy] = record
            emitted.add((record.arch, record.proxy))
            if on_record is not None:
                on_record(record)

        # Claim a chunk's students just before scoring them, so concurrent workers split the work.
        for start in range(0, len(archs), self.chunk_size) if batched else ():
            window = list(zip(archs[start : start + self.chunk_size], strings[start : start + self.chunk_size]))
            chunk = self._claim_chunk(window, batched, done)
            if not chunk:
                continue
            try:
                records = self._chunks_with_retry(chunk, batched)
                if records is None:  # the space has no stacked network: one at a time after all
                    records = [self.compute(a, n) for a in chunk for n in batched]
                if self.cache is not None:
                    self.cache.put_many(records)
                for record in records:
                    emit(record)
            finally:
                if self.cache is not None:  # an interruption leaves no claim behind
                    for arch in chunk:
                        for n in batched:
                            if (self.space.to_str(arch), n) not in done:
                                self.cache.release(self.config_key, self.space.to_str(arch), n)

        out = []
        for arch, arch_str in zip(archs, strings):
            for name in names:
                record = done.get((arch_str, name))
                if record is None:  # one-at-a-time proxies, and pairs another worker held
                    record = self._score_through_cache(arch, name) if self.cache else self.compute(arch, name)
                if (arch_str, name) not in emitted:
                    emit(record)
                out.append(record)
        return out

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
