"""Comparing methods over paired blocks (seeds), and what a design can detect at all.

The data is a table of blocks by methods: one row per seed, one column per method (e.g. a sampler driven by
a proxy), each cell a measure of that run (e.g. the ground truth of the architecture it picked); NaN where a
method has no run for a seed. Runs of one seed are paired: the searches share the seed and with it their
first random trials, so the methods are compared seed by seed.

- :func:`signed_rank_test`: the two-sided Wilcoxon signed-rank test of paired differences (zeros dropped,
  Wilcoxon's convention). Exact wherever n <= 50: scipy's exact distribution when the absolute differences
  are distinct, else the exact distribution of the signed-rank sum given the tied mid-ranks (every sign
  pattern equally likely); the normal approximation above 50 pairs.
- :func:`pairwise_tests`: that test (or, on request, the unpaired two-sided Mann-Whitney U) for every pair
  of methods, with Holm's step-down correction over all pairs.
- :func:`friedman_test`: Friedman's test over the blocks every method has, the methods' average ranks and
  Nemenyi's post-hoc test (Demšar 2006): two methods differ when their average ranks differ by more than
  the critical difference ``q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 n))``, ``q_alpha`` the studentized
  range quantile for k methods and infinite degrees of freedom. The critical-difference diagram draws it.
- :func:`smallest_p`, :func:`design_floor`, :func:`seeds_needed`: the smallest p-value a design can reach.
  With n seeds the exact two-sided signed-rank test cannot go below ``2 / 2**n`` (every difference of one
  sign), and Holm's correction over m pairs multiplies the smallest p-value by m: with 3 seeds and 15 pairs
  nothing can be significant.
- :func:`separated_best`: the method a table may mark best: it is best on the measure, and the corrected
  test separates it from every other method in its favour.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._stats import holm

TESTS = ("wilcoxon", "mannwhitney")
TEST_NAMES = {"wilcoxon": "two-sided Wilcoxon signed-rank", "mannwhitney": "two-sided Mann-Whitney U"}
#: Up to this many nonzero differences the signed-rank test is exact, ties or not.
EXACT_MAX = 50


def check_test(test: str) -> str:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}. Valid choices: {', '.join(TESTS)}")
    return test


@dataclass(frozen=True)
class TestResult:
    """One two-sample test: its statistic, two-sided p-value, how the p-value was computed, and which sample
    the data put higher (``"a"``, ``"b"`` or ``""`` when neither)."""

    statistic: float
    pvalue: float
    method: str
    higher: str


def _tied_signed_rank_p(ranks: np.ndarray, positive: float) -> float:
    """Exact two-sided p-value of the signed-rank sum ``positive`` given the (mid-)ranks, by convolution.

    Under the null hypothesis each difference is positive or negative with probability 1/2, independently,
    so the positive-rank sum is a sum of independent ``rank * Bernoulli(1/2)``; doubled mid-ranks are integers.
    """
    weights = np.rint(2 * ranks).astype(int)
    pmf = np.zeros(int(weights.sum()) + 1)
    pmf[0] = 1.0
    for w in weights:
        shifted = np.zeros_like(pmf)
        shifted[w:] = pmf[: len(pmf) - w]
        pmf = 0.5 * (pmf + shifted)
    t = round(2 * positive)
    return float(min(1.0, 2 * min(pmf[: t + 1].sum(), pmf[t:].sum())))


def signed_rank_test(differences: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of paired differences (a - b); zero differences are dropped.

    The statistic is scipy's: the smaller of the positive and negative rank sums. With no nonzero difference
    there is no evidence of one: p = 1.
    """
    d = np.asarray(differences, dtype=float)
    if not np.isfinite(d).all():
        raise ValueError("the signed-rank test needs finite differences")
    d = d[d != 0]
    if len(d) == 0:
        return TestResult(0.0, 1.0, "no nonzero difference", "")
    ranks = stats.rankdata(np.abs(d))
    positive = float(ranks[d > 0].sum())
    negative = float(ranks[d < 0].sum())
    higher = "a" if positive > negative else "b" if negative > positive else ""
    tied = len(np.unique(np.abs(d))) < len(d)
    if len(d) > EXACT_MAX:
        result = stats.wilcoxon(d, method="asymptotic")
        return TestResult(float(result.statistic), float(result.pvalue), "normal approximation", higher)
    if not tied:
        result = stats.wilcoxon(d, method="exact")
        return TestResult(float(result.statistic), float(result.pvalue), "exact", higher)
    return TestResult(min(positive, negative), _tied_signed_rank_p(ranks, positive), "exact (ties)", higher)


def mann_whitney_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Mann-Whitney U test (scipy's choice of exact or asymptotic p-value); the statistic is U of a."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    result = stats.mannwhitneyu(x, y, alternative="two-sided")
    u = float(result.statistic)
    half = len(x) * len(y) / 2
    higher = "a" if u > half else "b" if u < half else ""
    return TestResult(u, float(result.pvalue), "scipy auto", higher)


def smallest_p(test: str, n_a: int, n_b: int | None = None) -> float:
    """The smallest two-sided p-value ``test`` can give: ``2 / 2**n`` for the signed-rank test on n pairs,
    ``2 / C(n_a + n_b, n_a)`` for the Mann-Whitney U test (its exact form; ties only raise it)."""
    check_test(test)
    if test == "wilcoxon":
        return 1.0 if n_a < 1 else min(1.0, 2.0 / 2.0**n_a)
    n_b = n_a if n_b is None else n_b
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def design_floor(test: str, n_seeds: int, n_methods: int) -> float:
    """The smallest p-value any pair can reach after Holm's correction over all pairs of ``n_methods`` methods
    with ``n_seeds`` seeds each: Holm multiplies the smallest p-value by the number of pairs."""
    pairs = n_methods * (n_methods - 1) // 2
    return min(1.0, max(pairs, 1) * smallest_p(test, n_seeds, n_seeds))


def seeds_needed(test: str, n_methods: int, alpha: float = 0.05) -> int:
    """The fewest seeds per method with which the design floor falls below ``alpha``."""
    n = 1
    while design_floor(test, n, n_methods) >= alpha:
        n += 1
    return n


def pairwise_tests(
    values: pd.DataFrame, *, higher_is_better: bool, test: str = "wilcoxon", alpha: float = 0.05
) -> pd.DataFrame:
    """Every pair of methods (columns of ``values``, rows are seeds): the test, Holm-corrected over the pairs.

    One row per pair: ``method_a, method_b, n_a, n_b, n_pairs`` (seeds both have; the signed-rank test
    uses those), ``mean_a, mean_b, median_a, median_b, statistic, p, p_method, favours`` (the method the
    data put ahead, by the test's own statistic and the measure's direction; empty when neither),
    ``p_holm``, ``significant`` (p_holm < alpha) and ``p_floor``: the smallest corrected p-value this
    pair's seeds allow.
    """
    check_test(test)
    rows = []
    for a, b in itertools.combinations(values.columns, 2):
        va, vb = values[a].dropna(), values[b].dropna()
        common = va.index.intersection(vb.index)
        if test == "wilcoxon":
            if len(common) == 0:
                raise ValueError(f"the Wilcoxon test pairs seeds, but {a} and {b} share none")
            result = signed_rank_test(va.loc[common].to_numpy() - vb.loc[common].to_numpy())
            floor = smallest_p(test, len(common))
        else:
            result = mann_whitney_test(va.to_numpy(), vb.to_numpy())
            floor = smallest_p(test, len(va), len(vb))
        rows.append(
            {
                "method_a": str(a),
                "method_b": str(b),
                "n_a": len(va),
                "n_b": len(vb),
                "n_pairs": len(common),
                "mean_a": float(va.mean()),
                "mean_b": float(vb.mean()),
                "median_a": float(va.median()),
                "median_b": float(vb.median()),
                "statistic": result.statistic,
                "p": result.pvalue,
                "p_method": result.method,
                "favours": _ahead(str(a), str(b), result.higher, higher_is_better),
                "p_floor": floor,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = holm(frame["p"].to_numpy())
    frame["p_floor"] = np.minimum(1.0, frame["p_floor"] * len(frame))
    frame["significant"] = frame["p_holm"] < alpha
    return frame


def _ahead(a: str, b: str, higher: str, higher_is_better: bool) -> str:
    if not higher:
        return ""
    top, bottom = (a, b) if higher == "a" else (b, a)
    return top if higher_is_better else bottom


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test over the complete blocks, the average ranks and Nemenyi's pairwise p-values."""

    methods: list[str]
    n_blocks: int
    statistic: float
    pvalue: float
    avg_ranks: pd.Series
    critical_difference: float
    #: Symmetric (methods x methods) Nemenyi p-values (1 on the diagonal).
    nemenyi: pd.DataFrame
    alpha: float
    #: The smallest p-values the design allows: Friedman's (every block ranks the methods alike) and Nemenyi's
    #: (the largest possible rank difference, k - 1).
    floor_friedman: float
    floor_nemenyi: float
    note: str = ""
    dropped_blocks: list = field(default_factory=list)

    @property
    def significant(self) -> bool:
        return bool(self.pvalue < self.alpha)


def _nemenyi_scale(k: int, n: int) -> float:
    return math.sqrt(k * (k + 1) / (6 * n))


def _nemenyi_p(rank_difference: float, k: int, n: int) -> float:
    # |R_i - R_j| / sqrt(k (k + 1) / (6 n)) is the studentized range statistic divided by sqrt(2).
    q = abs(rank_difference) * math.sqrt(2) / _nemenyi_scale(k, n)
    return float(min(1.0, stats.studentized_range.sf(q, k, np.inf)))


def friedman_test(values: pd.DataFrame, *, higher_is_better: bool, alpha: float = 0.05) -> FriedmanResult:
    """Friedman's test and Nemenyi's post-hoc test on the blocks (rows) where every method has a value.

    Ranks are 1 for the best method of a block (ties share the mean rank). Fewer than 3 methods or 2 blocks
    give NaN statistics and a ``note``.
    """
    methods = [str(c) for c in values.columns]
    complete = values.dropna()
    dropped = [b for b in values.index if b not in complete.index]
    k, n = len(methods), len(complete)
    ranks = complete.rank(axis=1, ascending=not higher_is_better, method="average")
    avg = ranks.mean().rename(index=str) if n else pd.Series(np.nan, index=methods)
    nan_matrix = pd.DataFrame(np.nan, index=methods, columns=methods)
    if k < 3 or n < 2:
        note = "Friedman's test needs at least 3 methods" if k < 3 else "Friedman's test needs at least 2 seeds"
        return FriedmanResult(methods, n, math.nan, math.nan, avg, math.nan, nan_matrix, alpha, 1.0, 1.0, note, dropped)
    if (ranks.nunique(axis=1) == 1).all():
        statistic, pvalue, note = 0.0, 1.0, "every method ties on every seed"
    else:
        result = stats.friedmanchisquare(*[complete[c].to_numpy(float) for c in complete.columns])
        statistic, pvalue, note = float(result.statistic), float(result.pvalue), ""
    nemenyi = pd.DataFrame(
        [[1.0 if a == b else _nemenyi_p(avg[a] - avg[b], k, n) for b in methods] for a in methods],
        index=methods,
        columns=methods,
    )
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return FriedmanResult(
        methods=methods,
        n_blocks=n,
        statistic=statistic,
        pvalue=pvalue,
        avg_ranks=avg,
        critical_difference=float(q_alpha * _nemenyi_scale(k, n)),
        nemenyi=nemenyi,
        alpha=alpha,
        floor_friedman=float(stats.chi2.sf(n * (k - 1), k - 1)),
        floor_nemenyi=_nemenyi_p(k - 1, k, n),
        note=note,
        dropped_blocks=dropped,
    )


def separated_best(
    means: pd.Series,
    *,
    higher_is_better: bool,
    separated: Callable[[str, str], bool],
) -> str | None:
    """The method with the best mean, if ``separated(best, other)`` holds for every other method with a value;
    None when several share the best mean (an all-tied column included) or any other is not separated."""
    values = means.dropna()
    if len(values) < 2:
        return None
    target = values.max() if higher_is_better else values.min()
    leaders = values.index[values == target]
    if len(leaders) > 1:
        return None
    best = str(leaders[0])
    return best if all(separated(best, str(other)) for other in values.index if str(other) != best) else None


def pair_separates(pairwise: pd.DataFrame) -> Callable[[str, str], bool]:
    """For :func:`separated_best`: whether the corrected test of a pair is significant in the first's favour."""
    lookup = {}
    for row in pairwise.itertuples():
        key = frozenset((row.method_a, row.method_b))
        lookup[key] = bool(row.significant) and row.favours
    return lambda best, other: lookup.get(frozenset((best, other))) == best


def rank_separates(result: FriedmanResult) -> Callable[[str, str], bool]:
    """For :func:`separated_best`: Friedman's test rejects and Nemenyi's test separates the pair."""
    return lambda best, other: result.significant and bool(result.nemenyi.loc[best, other] < result.alpha)


def cliques(avg_ranks: pd.Series, critical_difference: float) -> list[list[str]]:
    """Maximal groups of methods whose average ranks lie within the critical difference of each other (the
    bars of a critical-difference diagram), each in rank order."""
    ordered = avg_ranks.sort_values(kind="stable")
    names, ranks = list(ordered.index), ordered.to_numpy(float)
    groups: list[list[str]] = []
    last_end = -1
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and ranks[j + 1] - ranks[i] <= critical_difference:
            j += 1
        if j > i and j > last_end:
            groups.append(names[i : j + 1])
            last_end = j
    return groups
