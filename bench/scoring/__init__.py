"""Scoring: turning architectures into proxy scores, once, with a shared cache."""

from ._batched import BatchedScorer, PrecomputedStudent
from ._cache import ScoreCache
from ._records import FAILED, NONFINITE, OK, STATUSES, ScoreRecord, ScoringConfig, score_key
from ._scorer import Scorer, network_seed

__all__ = [
    "FAILED",
    "NONFINITE",
    "OK",
    "STATUSES",
    "BatchedScorer",
    "PrecomputedStudent",
    "ScoreCache",
    "ScoreRecord",
    "Scorer",
    "ScoringConfig",
    "network_seed",
    "score_key",
]
