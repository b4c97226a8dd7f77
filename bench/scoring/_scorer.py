"""The scorer: (space, architectures, proxies, batch, teacher, device, seed) -> scores and timings."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch

from proxies import Proxy, ProxyError, ProxyInputs, get_proxy, initialise
from spaces import FeatureNetwork, Features, SearchSpace, get_space

from ..data import check_dataset, proxy_batch
from ._cache import ScoreCache
from ._precision import numeric_precision
from ._records import FAILED, NONFINITE, OK, TRANSIENT, ScoreRecord, ScoringConfig


def network_seed(seed: int, arch: str, role: str = "student") -> int:
    """The seed of one network's initialisation: a hash of the run's seed and the architecture."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{role}|{arch}".encode()).digest()[:8], "little") % (2**63)


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
            images = check_dataset(config.image_dataset)
            if images.num_classes > self.space.num_classes.get(config.dataset, images.num_classes):
                raise ValueError(
                    f"{config.image_dataset} images have {images.num_classes} classes, more than the "
                    f"{config.dataset} head of {self.space.num_classes[config.dataset]}"
                )
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
        if cache is not None:
            cache.register_config(self.config_key, config.key_fields())
        self._inputs: ProxyInputs | None = None
        self._teacher: FeatureNetwork | None = None
        self._teacher_states: dict[str, Any] = {}

    # --- shared, prepared once ----------------------------------------------------------------------

    def inputs(self) -> ProxyInputs:
        if self._inputs is None:
            with self.numerics():
                self._inputs = self._prepare_inputs()
        return self._inputs

    def _prepare_inputs(self) -> ProxyInputs:
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
            batch = proxy_batch(cfg.image_dataset, batch_size=cfg.batch_size, seed=cfg.seed, root=cfg.data_root)
            images, labels = batch.images, batch.labels
        else:  # data-free proxies only need the input's shape
            images = torch.zeros(cfg.batch_size, *self.space.input_size())
            labels = torch.zeros(cfg.batch_size, dtype=torch.long)
        return ProxyInputs(
            images=images.to(self.device),
            labels=labels.to(self.device),
            num_classes=self.num_classes,
            seed=cfg.seed,
            teacher=self.teacher(),
        )

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
        """A freshly built student with the seeded initialisation of ``arch`` under this config.

        Spaces that draw a student's weights on the device by its own generator (``SearchSpace.build_seeded``)
        do so; the others are built under the global generator, seeded and restored around the build.
        """
        seed = network_seed(self.config.seed, self.space.to_str(arch))
        net = self.space.build_seeded(arch, self.num_classes, seed=seed, init=self.config.init, device=self.device)
        if net is None:
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
        proxy = self.proxies[proxy_name]
        inputs = self.inputs_for(proxy_name)  # shared preparation: not part of this student's time

        def score() -> float:
            direct = proxy.score_architecture(self.space, arch, dataset=self.config.dataset, seed=self.config.seed)
            return direct if direct is not None else proxy.score(self.student(arch), inputs)

        return self.record(arch, proxy_name, score)

    def compute_shared(self, arch: Any, names: Sequence[str]) -> list[ScoreRecord]:
        """Score one architecture with several feature-only proxies: one student, one forward pass for all.

        Each proxy gets the student as a :class:`PrecomputedStudent`, as the batched engine hands it; each
        record's time is its share of the build and forward plus its own scoring.
        """
        inputs = {name: self.inputs_for(name) for name in names}
        images = self.inputs().images
        start = time.perf_counter()
        failure: BaseException | None = None
        student: PrecomputedStudent | None = None
        try:
            with torch.no_grad(), self.numerics():
                net = self.student(arch)
                student = PrecomputedStudent(net.forward_features(images), images, net.classifier)
        except (ProxyError, RuntimeError, ValueError, ArithmeticError, IndexError, TimeoutError) as err:
            failure = err  # recorded for every proxy below, as each would have met it
        shared = (time.perf_counter() - start) / len(names)
        records = []
        for name in names:
            if failure is not None:
                score = functools.partial(_reraise, failure)
            else:
                score = functools.partial(self.proxies[name].score, student, inputs[name])
            records.append(self.record(arch, name, score, shared))
        return records

    def numerics(self):
        """The numeric precision of this config, for the duration of a ``with`` block (TF32 off unless asked)."""
        return numeric_precision(self.config.precision, self.device)

    def record(self, arch: Any, proxy_name: str, score: Callable[[], float], seconds: float = 0.0) -> ScoreRecord:
        """Run ``score`` and record its value, or why there is none; ``seconds`` adds time spent elsewhere.

        A proxy's own refusal (:class:`ProxyError`), a non-finite value and errors of the input's values are
        deterministic and recorded as such; out-of-memory, runtime (e.g. CUDA) errors and timeouts are
        transient: recorded for this run, computed again by the next.
        """
        start = time.perf_counter()
        value: float | None = None
        error = ""
        try:
            with self.numerics():
                value = float(score())
            status = OK if math.isfinite(value) else NONFINITE
        except ProxyError as err:
            status, error = FAILED, str(err)
        except torch.cuda.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            status, error = TRANSIENT, f"out of memory: {err}"
        except (RuntimeError, TimeoutError) as err:
            status, error = TRANSIENT, f"{type(err).__name__}: {err}"
        except (ValueError, ArithmeticError, IndexError) as err:
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
            if (record := self._try_through_cache(arch, proxy_name)) is not None:
                return record
            if (done := self.cache.wait(self.config_key, arch_str, proxy_name)) is not None:
                return done

    def _try_through_cache(self, arch: Any, proxy_name: str) -> ScoreRecord | None:
        """The pair's record from the cache, or computed by this worker once it claims it; None while another
        worker holds the claim."""
        assert self.cache is not None
        arch_str = self.space.to_str(arch)
        if (hit := self.cache.get(self.config_key, arch_str, proxy_name)) is not None:
            return hit
        if not self.cache.claim(self.config_key, arch_str, proxy_name, self._index(arch)):
            return None
        try:
            record = self.compute(arch, proxy_name)
        except BaseException:
            self.cache.release(self.config_key, arch_str, proxy_name)
            raise
        self.cache.put(record)
        return record

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
        """Scores of many architectures; cached ones are fetched in bulk, the rest computed in order.

        The feature-only proxies of one architecture share its student and forward pass (:meth:`compute_shared`).
        A pair another worker is computing is passed over and waited for at the end, so workers that go through
        the same list share it rather than queue behind one another.
        """
        names = list(proxies) if proxies is not None else list(self.proxies)
        strings = [self.space.to_str(a) for a in archs]
        known = self.cache.get_many(self.config_key, strings, names) if self.cache else {}
        records: list[ScoreRecord | None] = []
        deferred: list[tuple[int, Any, str]] = []
        for arch, arch_str in zip(archs, strings):
            missing = [n for n in names if (arch_str, n) not in known and self.proxies[n].feature_only]
            fresh = {r.proxy: r for r in self._shared_through_cache(arch, missing)} if len(missing) > 1 else {}
            for name in names:
                record = known.get((arch_str, name)) or fresh.get(name)
                if record is None:
                    record = self._try_through_cache(arch, name) if self.cache else self.compute(arch, name)
                if record is None:
                    deferred.append((len(records), arch, name))
                elif on_record is not None:
                    on_record(record)
                records.append(record)
        for position, arch, name in deferred:
            records[position] = record = self._score_through_cache(arch, name)
            if on_record is not None:
                on_record(record)
        return records  # type: ignore[return-value]  # every deferred pair is filled in above

    def score_blocks(
        self,
        blocks: Sequence[Sequence[Any]],
        proxies: Iterable[str] | None = None,
        *,
        on_record: Callable[[ScoreRecord], None] | None = None,
    ) -> Iterator[list[ScoreRecord]]:
        """:meth:`score_many` of each block in turn, yielding each block's records as it is done."""
        names = list(proxies) if proxies is not None else None
        for block in blocks:
            yield self.score_many(block, names, on_record=on_record)

    def _shared_through_cache(self, arch: Any, names: list[str]) -> list[ScoreRecord]:
        """:meth:`compute_shared` for the pairs this worker can claim; the others are left to the one-pair path."""
        if self.cache is None:
            return self.compute_shared(arch, names)
        arch_str = self.space.to_str(arch)
        won = self.cache.claim_many(self.config_key, [(arch_str, n, self._index(arch)) for n in names])
        mine = [n for n in names if (arch_str, n) in won]
        if not mine:
            return []
        try:
            records = self.compute_shared(arch, mine)
        except BaseException:
            for name in mine:
                self.cache.release(self.config_key, arch_str, name)
            raise
        self.cache.put_many(records)
        return records


def _reraise(error: BaseException) -> float:
    raise error
