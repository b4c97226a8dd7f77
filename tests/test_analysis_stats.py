"""Holm's correction, 2-D Pareto fronts and hypervolume on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import holm, hypervolume_2d, pareto_mask


def test_holm_matches_the_hand_computed_step_down():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_order_and_handles_ties_and_one_test():
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.02, 0.02, 0.5]), [0.06, 0.06, 0.5])
    np.testing.assert_allclose(holm([0.2]), [0.2])
    assert holm([]).shape == (0,)


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [1.5], [-0.1]])
def test_holm_rejects_values_that_are_not_p_values(bad):
    with pytest.raises(ValueError, match="p-values"):
        holm(bad)


def test_pareto_mask_keeps_duplicates_and_drops_dominated_points():
    points = np.array([[3, 1], [2, 2], [1, 3], [1, 1], [2, 2], [3, 0]], dtype=float)
    assert pareto_mask(points).tolist() == [True, True, True, False, True, False]


def test_hypervolume_of_a_staircase_by_hand():
    front = np.array([[3, 1], [2, 2], [1, 3]], dtype=float)
    # rectangles 3x1 + 2x(2-1) + 1x(3-2)
    assert hypervolume_2d(front, (0, 0)) == pytest.approx(6.0)
    # dominated and reference-violating points add nothing
    more = np.vstack([front, [[1, 1], [-1, 5], [2.5, 0]]])
    assert hypervolume_2d(more, (0, 0)) == pytest.approx(6.0)
    # a moved reference: only (2, 2) strictly dominates (1, 1)
    assert hypervolume_2d(front, (1, 1)) == pytest.approx(1.0)
    assert hypervolume_2d(np.empty((0, 2)), (0, 0)) == 0.0


def test_hypervolume_rejects_a_bad_reference():
    with pytest.raises(ValueError, match="reference point"):
        hypervolume_2d(np.array([[1.0, 1.0]]), (0.0,))
