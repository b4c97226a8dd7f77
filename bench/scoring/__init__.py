"""Scoring: turning architectures into proxy scores, once, with a shared cache."""

from ._batched import BatchedScorer, PrecomputedStudent
from ._cache import CacheUnavailableError, ScoreCache
from ._packs import PACK_FORMAT, PackError, PackSummary, export_pack, import_pack, read_pack
from ._records import FAILED, NONFINITE, OK, PRECISIONS, STATUSES, TRANSIENT, ScoreRecord, ScoringConfig, score_key
from ._scorer import Scorer, network_seed
from ._workers import CPU_ENGINE_NOTE, ENGINES, default_chunk_size, make_scorers, resolve_engine, score_in_workers

__all__ = [
    "CPU_ENGINE_NOTE",
    "ENGINES",
    "FAILED",
    "NONFINITE",
    "OK",
    "PACK_FORMAT",
    "PRECISIONS",
    "STATUSES",
    "TRANSIENT",
    "BatchedScorer",
    "CacheUnavailableError",
    "PackError",
    "PackSummary",
    "PrecomputedStudent",
    "ScoreCache",
    "ScoreRecord",
    "Scorer",
    "ScoringConfig",
    "default_chunk_size",
    "export_pack",
    "import_pack",
    "make_scorers",
    "network_seed",
    "read_pack",
    "resolve_engine",
    "score_in_workers",
    "score_key",
]
