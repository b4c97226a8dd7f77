"""Small statistics the tables need and scipy does not ship: Holm's correction, 2-D Pareto fronts, hypervolume."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the i-th is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting where the adjusted value is below alpha controls
    the family-wise error rate at alpha. (``scipy.stats.false_discovery_control`` is Benjamini-Hochberg,
    a different guarantee.)
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm expects a flat list of p-values, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of an (n, 2) array are non-dominated when both coordinates are maximised.

    A point is dominated if another is at least as good in both coordinates and better in one; equal
    points do not dominate each other, so duplicates of a front member are all on the front.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"pareto_mask expects an (n, 2) array, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("pareto_mask got non-finite coordinates")
    n = len(pts)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    # Sweep by x descending; within one x value, only the largest y can survive, and only if no point
    # with a strictly larger x has a y at least as large.
    order = np.lexsort((-pts[:, 1], -pts[:, 0]))
    best_y_before = -np.inf
    i = 0
    while i < n:
        j = i
        x = pts[order[i], 0]
        while j < n and pts[order[j], 0] == x:
            j += 1
        group = order[i:j]
        top = pts[group[0], 1]
        if top > best_y_before:
            mask[group[pts[group, 1] == top]] = True
        best_y_before = max(best_y_before, top)
        i = j
    return mask


def hypervolume_2d(points: np.ndarray, reference: Sequence[float]) -> float:
    """Area dominated by ``points`` (both coordinates maximised) and bounded below by ``reference``.

    Points that do not strictly dominate the reference add nothing. The union of the rectangles
    [reference, point] is measured exactly by a sweep over x descending.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (2,) or not np.isfinite(ref).all():
        raise ValueError(f"the reference point must be two finite numbers, got {list(reference)}")
    if not np.isfinite(pts).all():
        raise ValueError("hypervolume_2d got non-finite coordinates")
    pts = pts[(pts[:, 0] > ref[0]) & (pts[:, 1] > ref[1])]
    volume = 0.0
    covered_y = ref[1]
    for x, y in pts[np.lexsort((-pts[:, 1], -pts[:, 0]))]:
        if y > covered_y:
            volume += (x - ref[0]) * (y - covered_y)
            covered_y = y
    return float(volume)
