"""Scoring: turning architectures into proxy scores, once, with a shared cache."""

from ._batched import BatchedScorer, PrecomputedStudent
from ._cache import ScoreCache
from ._records import FAILED, NONFINITE, OK, PRECISIONS, STATUSES, TRANSIENT, ScoreRecord, ScoringConfig, score_key
from ._scorer import Scorer, network_seed
from ._workers import ENGINES, default_chunk_size, make_scorers, score_in_workers

__all__ = [
    "ENGINES",
    "FAILED",
    "NONFINITE",
    "OK",
    "PRECISIONS",
    "STATUSES",
    "TRANSIENT",
    "BatchedScorer",
    "PrecomputedStudent",
    "ScoreCache",
    "ScoreRecord",
    "Scorer",
    "ScoringConfig",
    "default_chunk_size",
    "make_scorers",
    "network_seed",
    "score_in_workers",
    "score_key",
]
