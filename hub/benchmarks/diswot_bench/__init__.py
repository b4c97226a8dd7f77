"""diswot-bench's training-free NAS problems for OptunaHub: ``Problem(space, proxy, dataset, teacher)``."""

from ._problem import Problem

__all__ = ["Problem"]
