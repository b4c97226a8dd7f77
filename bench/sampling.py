"""Which architectures a fixed sample holds: the draw ``bench score --sample N --sample-seed S`` scores."""

from __future__ import annotations

import numpy as np

from spaces import SearchSpace


def uniform_sample(space: SearchSpace, n: int, seed: int) -> list[int]:
    """``n`` distinct indices of a finite space drawn uniformly by a generator seeded with ``seed``, sorted."""
    size = len(space)
    if not 1 <= n <= size:
        raise ValueError(f"--sample must be in 1..{size} for space {space.name!r}, got {n}")
    return sorted(int(i) for i in np.random.default_rng(seed).choice(size, size=n, replace=False))
