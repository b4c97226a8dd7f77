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
        known = self.cache.get_many(self.config_key, strings, names) if self.cache else {}
        done: dict[tuple[str, str], ScoreRecord] = dict(known)

        # Students needing any batched proxy, claimed in the cache so concurrent workers split the work.
        todo: list[Any] = []
        for arch, arch_str in zip(archs, strings):
            missing = [n for n in batched if (arch_str, n) not in done]
            claimed = [n for n in missing if self._claim(arch, n)]
            if missing and len(claimed) == len(missing):
                todo.append(arch)
            elif self.cache is not None:  # another worker holds part of it: leave it all to the cache path
                for n in claimed:
                    self.cache.release(self.config_key, arch_str, n)
        emitted: set[tuple[str, str]] = set()
        try:
            for start in range(0, len(todo), self.chunk_size):
                chunk = todo[start : start + self.chunk_size]
                records = self._chunks_with_retry(chunk, batched)
                if records is None:  # the space has no stacked network: one at a time after all
                    records = [self.compute(a, n) for a in chunk for n in batched]
                for record in records:
                    if (record.arch, record.proxy) in done:
                        continue
                    if self.cache is not None:
                        self.cache.put(record)
                    done[record.arch, record.proxy] = record
                    emitted.add((record.arch, record.proxy))
                    if on_record is not None:
                        on_record(record)
        finally:
            if self.cache is not None:  # release claims of students left unscored by an interruption
                for arch in todo:
                    for n in batched:
                        if (self.space.to_str(arch), n) not in done:
                            self.cache.release(self.config_key, self.space.to_str(arch), n)

        out = []
        for arch, arch_str in zip(archs, strings):
            for name in names:
                record = done.get((arch_str, name))
                if record is None:  # one-at-a-time proxies, and pairs another worker held
                    record = self._score_through_cache(arch, name) if self.cache else self.compute(arch, name)
                if on_record is not None and (arch_str, name) not in emitted:
                    on_record(record)
                out.append(record)
        return out

    def _claim(self, arch: Any, name: str) -> bool:
        if self.cache is None:
            return True
        return self.cache.claim(self.config_key, self.space.to_str(arch), name, self._index(arch))
