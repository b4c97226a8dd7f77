"""The scorer: (space, architectures, proxies, batch, teacher, device, seed) -> scores and timings."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from proxies import Proxy, ProxyError, ProxyInputs, get_proxy, initialise
from spaces import FeatureNetwork, SearchSpace, get_space

from ..data import check_dataset, proxy_batch
from ._cache import ScoreCache
from ._records import FAILED, NONFINITE, OK, ScoreRecord, ScoringConfig


def network_seed(seed: int, arch: str, role: str = "student") -> int:
    """The seed of one network's initialisation: a hash of the run's seed and the architecture."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{role}|{arch}".encode()).digest()[:8], "little") % (2**63)


class Scorer:
    """Scores architectures of one space with registered proxies, one student at a time.

    The batch, the teacher and each proxy's teacher-side state are prepared once, on first use.
    Each (architecture, proxy) pair gets a freshly built student with the same seeded initialisation,
    so a proxy never sees another's leftovers (gradients, modified weights). With a ``cache``, a score
    is looked up first and stored after; failures are recorded, never raised.
    """

    def __init__(self, config: ScoringConfig, proxies: Sequence[str], *, cache: ScoreCache | None = None) -> None:
        self.config = config
        self.space: SearchSpace = get_space(config.space)
        # A text space's datasets are token corpora, checked against the space's own list below.
        self.tokens = getattr(self.space, "input_kind", "image") == "tokens"
        if not self.tokens:
            check_dataset(config.dataset)
        if config.dataset not in self.space.num_classes:
            raise ValueError(
                f"space {config.space!r} has no dataset {config.dataset!r}. "
                f"Valid choices: {', '.join(self.space.num_classes)}"
            )
        if config.batch_size < 1:
            raise ValueError(f"batch size must be positive, got {config.batch_size}")
        self.num_classes = self.space.num_classes[config.dataset]
        self.proxies: dict[str, Proxy] = {name: get_proxy(name) for name in proxies}
        kind = getattr(self.space, "input_kind", "image")
        for name, proxy in self.proxies.items():
            if kind not in proxy.input_kinds:
                raise ValueError(
                    f"proxy {name!r} scores networks of {' or '.join(proxy.input_kinds)} inputs, and space "
                    f"{config.space!r} takes {kind} inputs"
                )
        needs_teacher = [n for n, p in self.proxies.items() if p.needs_teacher]
        if needs_teacher and not config.teacher:
            from ..teachers import TEACHERS

            raise ValueError(
                f"proxy {needs_teacher[0]!r} needs a teacher; pass --teacher (choices: {', '.join(TEACHERS.names())})"
            )
        self.device = torch.device(config.device)
        self.cache = cache
        self.config_key = config.key()
        self._inputs: ProxyInputs | None = None
        self._teacher: FeatureNetwork | None = None
        self._teacher_states: dict[str, Any] = {}

    # --- shared, prepared once ----------------------------------------------------------------------

    def inputs(self) -> ProxyInputs:
        if self._inputs is None:
            cfg = self.config
            if self.tokens and any(p.needs_data for p in self.proxies.values()):
                from ..lm import text_proxy_batch

                needs_labels = any(p.needs_labels for p in self.proxies.values())
                images, labels = text_proxy_batch(
                    cfg.dataset,
                    batch_size=cfg.batch_size,
                    seed=cfg.seed,
                    root=cfg.data_root,
                    labels_needed=needs_labels,
                )
            elif any(p.needs_data for p in self.proxies.values()):
                batch = proxy_batch(cfg.dataset, batch_size=cfg.batch_size, seed=cfg.seed, root=cfg.data_root)
                images, labels = batch.images, batch.labels
            else:  # data-free proxies only need the input's shape
                images = torch.zeros(cfg.batch_size, *self.space.input_size())
                labels = torch.zeros(cfg.batch_size, dtype=torch.long)
            self._inputs = ProxyInputs(
                images=images.to(self.device),
                labels=labels.to(self.device),
                num_classes=self.num_classes,
                seed=cfg.seed,
                teacher=self.teacher(),
            )
        return self._inputs

    def teacher(self) -> FeatureNetwork | None:
        if self._teacher is None and self.config.teacher and any(p.needs_teacher for p in self.proxies.values()):
            from ..teachers import load_teacher

            cfg = self.config
            self._teacher = load_teacher(
                cfg.teacher,
                space=cfg.space,
                dataset=cfg.dataset,
                num_classes=self.num_classes,
                seed=network_seed(cfg.seed, cfg.teacher, role="teacher"),
                init=cfg.init,
                weights=cfg.teacher_weights,
                device=self.device,
            )
        return self._teacher

    def inputs_for(self, proxy_name: str) -> ProxyInputs:
        inputs = self.inputs()
        proxy = self.proxies[proxy_name]
        if not proxy.needs_teacher:
            return inputs
        if proxy_name not in self._teacher_states:
            self._teacher_states[proxy_name] = proxy.prepare_teacher(inputs.teacher, inputs)
        return dataclasses.replace(inputs, teacher_state=self._teacher_states[proxy_name])

    def student(self, arch: Any) -> FeatureNetwork:
        """A freshly built student with the seeded initialisation of ``arch`` under this config."""
        seed = network_seed(self.config.seed, self.space.to_str(arch))
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            net = initialise(self.space.build(arch, self.num_classes), self.config.init)
        return net.to(self.device).train()

    # --- scoring -----------------------------------------------------------------------------------

    def _index(self, arch: Any) -> int | None:
        try:
            return self.space.index(arch)
        except TypeError:
            return None

    def compute(self, arch: Any, proxy_name: str) -> ScoreRecord:
        """Score one pair now, without the cache; a failure becomes a record with its reason."""
        inputs = self.inputs_for(proxy_name)  # shared preparation: not part of this student's time
        return self.record(arch, proxy_name, lambda: self.proxies[proxy_name].score(self.student(arch), inputs))

    def record(self, arch: Any, proxy_name: str, score: Callable[[], float], seconds: float = 0.0) -> ScoreRecord:
        """Run ``score`` and record its value, or why there is none; ``seconds`` adds time spent elsewhere."""
        start = time.perf_counter()
        value: float | None = None
        error = ""
        try:
            value = float(score())
            status = OK if math.isfinite(value) else NONFINITE
        except ProxyError as err:
            status, error = FAILED, str(err)
        except torch.cuda.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            status, error = FAILED, f"out of memory: {err}"
        except (RuntimeError, ValueError, ArithmeticError, IndexError) as err:
            status, error = FAILED, f"{type(err).__name__}: {err}"
        if status == NONFINITE:
            value, error = None, f"score was {value}"
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return ScoreRecord(
            arch=self.space.to_str(arch),
            proxy=proxy_name,
            score=value,
            seconds=seconds + time.perf_counter() - start,
            status=status,
            error=error,
            index=self._index(arch),
            config=self.config_key,
        )

    def _score_through_cache(self, arch: Any, proxy_name: str) -> ScoreRecord:
        assert self.cache is not None
        arch_str = self.space.to_str(arch)
        while True:
            if (hit := self.cache.get(self.config_key, arch_str, proxy_name)) is not None:
                return hit
            if self.cache.claim(self.config_key, arch_str, proxy_name, self._index(arch)):
                try:
                    record = self.compute(arch, proxy_name)
                except BaseException:
                    self.cache.release(self.config_key, arch_str, proxy_name)
                    raise
                self.cache.put(record)
                return record
            if (done := self.cache.wait(self.config_key, arch_str, proxy_name)) is not None:
                return done

    def score(self, arch: Any, proxies: Iterable[str] | None = None) -> dict[str, ScoreRecord]:
        """Scores of one architecture, looked up in the cache where they are, computed otherwise."""
        names = list(proxies) if proxies is not None else list(self.proxies)
        if self.cache is None:
            return {name: self.compute(arch, name) for name in names}
        return {name: self._score_through_cache(arch, name) for name in names}

    def score_many(
        self,
        archs: Sequence[Any],
        proxies: Iterable[str] | None = None,
        *,
        on_record: Callable[[ScoreRecord], None] | None = None,
    ) -> list[ScoreRecord]:
        """Scores of many architectures; cached ones are fetched in bulk, the rest computed in order."""
        names = list(proxies) if proxies is not None else list(self.proxies)
        strings = [self.space.to_str(a) for a in archs]
        known = self.cache.get_many(self.config_key, strings, names) if self.cache else {}
        records = []
        for arch, arch_str in zip(archs, strings):
            for name in names:
                record = known.get((arch_str, name))
                if record is None:
                    record = self._score_through_cache(arch, name) if self.cache else self.compute(arch, name)
                records.append(record)
                if on_record is not None:
                    on_record(record)
        return records
