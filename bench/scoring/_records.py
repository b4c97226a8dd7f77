"""What a score is keyed by and what is recorded about it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

OK = "ok"
FAILED = "failed"  # deterministic: the same config fails again (e.g. a proxy that cannot score the cell)
NONFINITE = "nonfinite"
#: A failure of the moment (out of memory, a CUDA or runtime error, a timeout): recorded in the run that
#: met it, never kept in the cache, so the next run computes the score again.
TRANSIENT = "transient"
STATUSES = (OK, FAILED, NONFINITE, TRANSIENT)
#: Numeric precision of a score: ``fp32`` (TF32 off, the default) or ``tf32`` (TF32 matmuls and
#: convolutions on CUDA devices that have them).
PRECISIONS = ("fp32", "tf32")


@dataclass(frozen=True)
class ScoringConfig:
    """Everything that determines a score besides the architecture and the proxy.

    ``seed`` draws the data batch and seeds each network's initialisation (with the architecture),
    so the same config gives the same scores. The device's *type* is part of a score's key (a generator
    draws other numbers on a GPU than on a CPU, and kernels sum in other orders), and so is ``precision``;
    the device's index and ``data_root`` are not.
    """

    space: str = "nb201"
    dataset: str = "cifar10"
    batch_size: int = 64
    seed: int = 0
    teacher: str | None = None
    teacher_weights: str | None = None
    init: str = "default"
    device: str = "cpu"
    data_root: str | None = None
    precision: str = "fp32"
    #: The dataset whose images make the proxy batch, where it is not ``dataset`` (e.g. CIFAR-10 images under
    #: a 100-class head where CIFAR-100's are not at hand: ``bench.data.images_for``); part of the key.
    images: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}. Valid choices: {', '.join(PRECISIONS)}")
        if self.precision == "tf32" and self.device_type != "cuda":
            raise ValueError(f"precision 'tf32' applies to CUDA devices only, not {self.device!r}; use fp32")
        if self.images == self.dataset:
            object.__setattr__(self, "images", None)

    @property
    def image_dataset(self) -> str:
        """The dataset the proxy batch is drawn from."""
        return self.images or self.dataset

    @property
    def device_type(self) -> str:
        return self.device.partition(":")[0]

    def key_fields(self) -> dict[str, object]:
        weights = self.teacher_weights
        if weights:
            path = Path(weights)
            # Name weights by content, so moving the file keeps its scores and retraining invalidates them.
            weights = hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.is_file() else weights
        fields: dict[str, object] = {
            "space": self.space,
            "dataset": self.dataset,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "teacher": self.teacher,
            "teacher_weights": weights,
            "init": self.init,
            "device": self.device_type,
            "precision": self.precision,
        }
        if self.images is not None:
            fields["images"] = self.images
        from spaces import SPACES, get_space

        # A space whose students inherit trained weights (AutoDistil's SuperLMs) names them by content too.
        inherited = getattr(get_space(self.space), "inherited_weights_key", None) if self.space in SPACES else None
        if inherited is not None:
            fields["inherited_weights"] = inherited()
        return fields

    def key(self) -> str:
        """A short stable hash of :meth:`key_fields`."""
        return config_key(self.key_fields())


def config_key(fields: dict[str, object]) -> str:
    """The key of a scoring config's fields (:meth:`ScoringConfig.key_fields`)."""
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ScoreRecord:
    """One (architecture, proxy) score with how long it took and whether it worked."""

    arch: str
    proxy: str
    score: float | None
    seconds: float
    status: str
    error: str = ""
    index: int | None = None
    config: str = ""
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row.pop("cached")
        return row


def known_version(name: str) -> int | None:
    """The version of the registered proxy ``name``; None for other keys the cache holds (e.g. training jobs)."""
    from proxies import PROXIES, proxy_version

    return proxy_version(name) if name in PROXIES else None


def score_key(config_key: str, arch: str, proxy: str) -> str:
    """The cache key of one score: its config, the architecture and the proxy at its current version."""
    version = known_version(proxy)
    name = proxy if version is None else f"{proxy}@{version}"
    return hashlib.sha1(f"{config_key}|{arch}|{name}".encode()).hexdigest()
