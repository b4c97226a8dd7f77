"""The committed NAS-Bench-201 pack: its scores are what the suite computes, and a default run reads them all."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.scoring import OK, ScoreCache, Scorer, ScoringConfig, import_pack, read_pack
from bench.scoring._packs import check_pack

PACK = Path(__file__).resolve().parents[1] / "packs" / "nb201-cifar10"
CHECKED = 30
runner = CliRunner()


@pytest.fixture(scope="module")
def pack() -> tuple[dict, pd.DataFrame]:
    manifest, frame = read_pack(PACK)  # the digest in pack.json is checked here
    check_pack(manifest)  # every proxy at this suite's version, every config key this suite's
    return manifest, frame


def test_the_pack_holds_the_protocols_settings(pack) -> None:
    manifest, frame = pack
    assert set(frame["space"]) == {"nb201"} and set(frame["dataset"]) == {"cifar10"}
    assert set(frame["batch_size"]) == {64} and set(frame["init"]) == {"default"}
    assert set(frame["precision"]) == {"fp32"}
    assert set(frame["teacher"].dropna()) == {"resnet56"} and frame["teacher_weights"].isna().all()
    assert {"diswot", "diswot_semantic", "diswot_relation", "params", "flops"} <= set(manifest["proxies"])
    assert not frame.duplicated(["config", "proxy", "arch"]).any()


def test_thirty_random_cells_of_the_pack_score_the_same_again(pack, data_root) -> None:
    """Cells drawn at random over every proxy and seed but the cost counts, scored again one at a time."""
    _, frame = pack
    rows = frame[(frame["status"] == OK) & ~frame["proxy"].isin(["params", "flops"])]
    chosen = rows.iloc[np.random.default_rng(2026).choice(len(rows), size=CHECKED, replace=False)]
    from spaces import get_space

    nb201 = get_space("nb201")
    for seed, group in chosen.groupby("seed"):
        config = ScoringConfig(space="nb201", dataset="cifar10", batch_size=64, seed=int(seed), teacher="resnet56",
                               data_root=str(data_root))  # fmt: skip
        scorer = Scorer(config, sorted(set(group["proxy"])))
        for row in group.itertuples():
            record = scorer.score(nb201.parse(row.arch), [row.proxy])[row.proxy]
            assert record.status == OK, record.error
            assert math.isclose(record.score, row.score, rel_tol=1e-5, abs_tol=1e-9), (row.proxy, row.arch, seed)


def test_after_importing_the_pack_the_default_run_computes_nothing(tmp_path, data_root) -> None:
    cache = f"sqlite:///{tmp_path / 'scores.db'}"
    summary = import_pack(PACK, ScoreCache(cache))
    assert summary.imported > 0
    result = runner.invoke(app, ["run", "--space", "nb201", "--proxy", "diswot", "--sampler", "nsga2", "--cache",
                                 cache, "--out", str(tmp_path / "run"), "--data-root", str(data_root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "0 scores computed, 99 from the score cache" in said and "1 invalid cell(s) never scored" in said
