"""Holm's correction, 2-D Pareto fronts, hypervolume, paired tests, Friedman and Nemenyi, against cases worked
out by hand, by enumeration, with scipy directly or against published critical values."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.analysis import (
    cliques,
    design_floor,
    friedman_test,
    holm,
    hypervolume_2d,
    pair_separates,
    pairwise_tests,
    pareto_mask,
    seeds_needed,
    separated_best,
    signed_rank_test,
    smallest_p,
)


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


# --- paired tests, Friedman and Nemenyi, what a design can detect -------------------------------------------


def _signed_rank_p_by_enumeration(d: list[float]) -> float:
    """Two-sided exact p of the signed-rank sum, by listing every sign pattern of the nonzero differences."""
    d = [x for x in d if x != 0]
    ranks = stats.rankdata(np.abs(d))
    observed = sum(r for r, x in zip(ranks, d) if x > 0)
    centre = ranks.sum() / 2
    extreme = sum(
        abs(sum(r for r, s in zip(ranks, signs) if s) - centre) >= abs(observed - centre) - 1e-9
        for signs in itertools.product([False, True], repeat=len(d))
    )
    return extreme / 2 ** len(d)


def test_signed_rank_exact_without_ties_is_scipys_and_reaches_two_over_two_to_the_n():
    result = signed_rank_test(np.arange(1.0, 11.0))  # ten seeds, every difference positive
    assert result.pvalue == pytest.approx(2 / 2**10) and result.method == "exact" and result.higher == "a"
    rng = np.random.default_rng(4)
    for _ in range(5):
        d = rng.normal(size=9)
        expected = stats.wilcoxon(d, method="exact")
        got = signed_rank_test(d)
        assert got.pvalue == pytest.approx(expected.pvalue) and got.statistic == pytest.approx(expected.statistic)
        assert got.pvalue == pytest.approx(_signed_rank_p_by_enumeration(list(d)))


def test_signed_rank_with_ties_and_zeros_is_exact():
    # Tied absolute differences (two picks repeating across seeds) and two zeros (both found the same cell).
    d = [0.5, -0.5, 1.2, 1.2, 1.2, 0.0, 2.0, -0.3, 0.0, 0.7]
    got = signed_rank_test(d)
    assert got.method == "exact (ties)"
    assert got.pvalue == pytest.approx(_signed_rank_p_by_enumeration(d), abs=1e-12)
    assert signed_rank_test([0.0, 0.0, 0.0]).pvalue == 1.0
    # Beyond 50 pairs: the normal approximation, as scipy computes it.
    long = np.random.default_rng(0).normal(0.2, 1.0, size=60)
    assert signed_rank_test(long).pvalue == pytest.approx(stats.wilcoxon(long, method="asymptotic").pvalue)


def test_smallest_p_and_the_design_floor_by_hand():
    assert smallest_p("wilcoxon", 3) == 0.25
    assert smallest_p("mannwhitney", 3, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    # three seeds, six methods (15 pairs): Holm multiplies 0.25 by 15 and caps at 1
    assert design_floor("wilcoxon", 3, 6) == 1.0
    assert design_floor("wilcoxon", 10, 6) == pytest.approx(15 * 2 / 2**10)
    assert seeds_needed("wilcoxon", 6) == 10  # 15 * 2 / 2**9 = 0.059 is not below 0.05
    # The floor is reached: a method better on every one of ten seeds against each of two others.
    values = pd.DataFrame({"a": np.arange(10.0) + 5, "b": np.arange(10.0), "c": np.arange(10.0) * 0.5})
    tests = pairwise_tests(values, higher_is_better=True)
    ab = tests.set_index(["method_a", "method_b"]).loc[("a", "b")]
    assert ab["p"] == pytest.approx(2 / 2**10) and ab["p_holm"] == pytest.approx(3 * 2 / 2**10)
    assert ab["p_floor"] == pytest.approx(3 * 2 / 2**10) and ab["favours"] == "a"


def test_pairwise_tests_pair_by_seed_and_correct_by_holm():
    rng = np.random.default_rng(1)
    values = pd.DataFrame(rng.normal(size=(12, 4)), columns=list("wxyz"))
    values.iloc[3, 1] = np.nan  # x lacks one seed: its pairs use the other eleven
    tests = pairwise_tests(values, higher_is_better=True, alpha=0.05)
    raw = []
    for a, b in itertools.combinations("wxyz", 2):
        both = values[[a, b]].dropna()
        raw.append(stats.wilcoxon(both[a] - both[b], method="exact").pvalue)
    np.testing.assert_allclose(tests["p"], raw)
    np.testing.assert_allclose(tests["p_holm"], holm(raw))
    assert tests.set_index(["method_a", "method_b"]).loc[("w", "x"), "n_pairs"] == 11
    mw = pairwise_tests(values, higher_is_better=True, test="mannwhitney")
    expected = stats.mannwhitneyu(values["w"], values["y"], alternative="two-sided").pvalue
    assert mw.set_index(["method_a", "method_b"]).loc[("w", "y"), "p"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="Valid choices: wilcoxon, mannwhitney"):
        pairwise_tests(values, higher_is_better=True, test="ttest")


# Demšar (2006), Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test, k = 2..10.
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


def test_friedman_equals_scipy_and_nemenyi_the_published_critical_values():
    rng = np.random.default_rng(2)
    shift = np.array([0.0, 0.3, 0.8, 1.5])
    values = pd.DataFrame(rng.normal(size=(14, 4)) + shift, columns=list("abcd"))
    result = friedman_test(values, higher_is_better=True)
    expected = stats.friedmanchisquare(*[values[c] for c in values.columns])
    assert result.statistic == pytest.approx(expected.statistic) and result.pvalue == pytest.approx(expected.pvalue)
    ranks = values.rank(axis=1, ascending=False).mean()
    np.testing.assert_allclose(result.avg_ranks[list("abcd")], ranks[list("abcd")])
    # Demšar's worked example: four methods on 14 data sets, CD = 2.569 * sqrt(4 * 5 / (6 * 14)) = 1.25
    assert result.critical_difference == pytest.approx(1.25, abs=0.005)
    for k, q in zip(range(2, 11), DEMSAR_Q05):
        cd = friedman_test(pd.DataFrame(rng.normal(size=(6, k))), higher_is_better=True).critical_difference
        if k >= 3:
            assert cd == pytest.approx(q * np.sqrt(k * (k + 1) / 36), abs=2e-3)
    # Nemenyi's p-value of a rank difference equal to the critical difference is alpha itself
    diff = result.avg_ranks["d"] - result.avg_ranks["a"]
    assert (result.nemenyi.loc["a", "d"] < 0.05) == (abs(diff) > result.critical_difference)
    # rank differences are at most k - 1 = 3: with 2 seeds the critical difference is 2.569 * sqrt(20 / 12) = 3.32,
    # out of reach; with 3 seeds it is 2.569 * sqrt(20 / 18) = 2.71
    assert friedman_test(values.iloc[:2], higher_is_better=True).floor_nemenyi > 0.05
    assert friedman_test(values.iloc[:3], higher_is_better=True).floor_nemenyi < 0.05
    assert friedman_test(values[["a", "b"]], higher_is_better=True).note.startswith("Friedman's test needs at least 3")


def test_the_best_is_marked_only_where_a_test_separates_it():
    def always(best, other):
        return True

    def never(best, other):
        return False

    means = pd.Series({"a": 0.9, "b": 0.5, "c": 0.4})
    assert separated_best(means, higher_is_better=True, separated=always) == "a"
    assert separated_best(means, higher_is_better=True, separated=never) is None
    assert separated_best(means, higher_is_better=False, separated=always) == "c"
    tied = pd.Series({"a": 0.5, "b": 0.5, "c": 0.5})
    assert separated_best(tied, higher_is_better=True, separated=always) is None  # an all-tied column
    shared = pd.Series({"a": 0.9, "b": 0.9, "c": 0.1})
    assert separated_best(shared, higher_is_better=True, separated=always) is None
    # through real tests: a separates from b but not from c
    values = pd.DataFrame({"a": np.arange(10.0) + 5, "b": np.arange(10.0), "c": np.arange(10.0) + 4.9})
    values.loc[[0, 2, 4], "c"] += 0.2
    tests = pairwise_tests(values, higher_is_better=True)
    assert separated_best(values.mean(), higher_is_better=True, separated=pair_separates(tests)) is None
    tests_ab = pairwise_tests(values[["a", "b"]], higher_is_better=True)
    # the same data, lower better: b is ahead, and separated
    lower = pairwise_tests(values[["a", "b"]], higher_is_better=False)
    assert separated_best(values[["a", "b"]].mean(), higher_is_better=False, separated=pair_separates(lower)) == "b"
    assert separated_best(values[["a", "b"]].mean(), higher_is_better=False, separated=pair_separates(tests_ab)) is None
    assert separated_best(values[["a", "b"]].mean(), higher_is_better=True, separated=pair_separates(tests_ab)) == "a"


def test_cliques_join_methods_within_the_critical_difference():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.4, "d": 3.9, "e": 4.0})
    assert cliques(ranks, 1.0) == [["a", "b"], ["b", "c"], ["d", "e"]]
    assert cliques(ranks, 2.5) == [["a", "b", "c"], ["b", "c", "d", "e"]]
    assert cliques(ranks, 3.0) == [["a", "b", "c", "d", "e"]]
    assert cliques(ranks, 0.05) == []
