"""What a score is keyed by and what is recorded about it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

OK = "ok"
FAILED = "failed"
NONFINITE = "nonfinite"
STATUSES = (OK, FAILED, NONFINITE)


@dataclass(frozen=True)
class ScoringConfig:
    """Everything that determines a score besides the architecture and the proxy.

    ``seed`` draws the data batch and seeds each network's initialisation (with the architecture),
    so the same config gives the same scores. ``device`` and ``data_root`` do not change a score and
    are not part of its key.
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
        }
        from spaces import SPACES, get_space

        # A space whose students inherit trained weights (AutoDistil's SuperLMs) names them by content too.
        inherited = getattr(get_space(self.space), "inherited_weights_key", None) if self.space in SPACES else None
        if inherited is not None:
            fields["inherited_weights"] = inherited()
        return fields

    def key(self) -> str:
        """A short stable hash of :meth:`key_fields`."""
        return hashlib.sha1(json.dumps(self.key_fields(), sort_keys=True).encode()).hexdigest()[:16]


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


def score_key(config_key: str, arch: str, proxy: str) -> str:
    return hashlib.sha1(f"{config_key}|{arch}|{proxy}".encode()).hexdigest()
