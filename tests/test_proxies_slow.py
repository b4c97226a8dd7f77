"""A small seeded sample's rank correlations land in wide bands around the published values.

Published: |Spearman| with the 200-epoch CIFAR-10 test accuracy of all 15,625 NAS-Bench-201 cells,
batch 64, one batch (Abdelfattah et al. 2021); NASWOT on the connected cells (Mellor et al. 2021).
A sample of 60 connected cells has a standard error of about 0.05-0.1 on these coefficients, so
the band is +-0.25: wide enough for sampling noise, narrow enough to catch a sign error, a proxy
scoring the wrong thing, or one that is constant. ``nox -s proxies_slow`` runs this file.
"""

from __future__ import annotations

import pytest
from scipy import stats

from bench.cli._score import uniform_sample
from bench.ground_truth import load_ground_truth
from bench.scoring import OK, Scorer, ScoringConfig

pytestmark = pytest.mark.slow

PUBLISHED = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59, "params": 0.75, "nwot": 0.79}
BAND = 0.25
SAMPLE = 60


def test_spearman_near_published(nb201, data_root):
    accuracy = load_ground_truth("csv", data_root=data_root).accuracy("cifar10")
    candidates = [nb201.arch_at(i) for i in uniform_sample(nb201, 2 * SAMPLE, seed=0)]
    archs = [a for a in candidates if nb201.is_connected(a)][:SAMPLE]
    scorer = Scorer(ScoringConfig(batch_size=64, seed=0), list(PUBLISHED))
    records = scorer.score_many(archs)
    for name, published in PUBLISHED.items():
        ok = [r for r in records if r.proxy == name and r.status == OK]
        assert len(ok) == SAMPLE, f"{name}: {[r.error for r in records if r.proxy == name and not r.ok][:3]}"
        rho = stats.spearmanr([r.score for r in ok], accuracy.loc[[r.arch for r in ok]]).statistic
        assert abs(rho - published) < BAND, f"{name}: Spearman {rho:.3f}, published {published}"
