"""The suite's problems as an OptunaHub benchmark package: plain Optuna samplers get the suite's scores."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import optunahub
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.analysis._scores import read_commented_csv
from bench.cli import app
from bench.ground_truth import load_ground_truth
from bench.scoring import ScoreCache, Scorer, ScoringConfig, export_pack
from bench.search._hub import local_packages

REGISTRY = Path(__file__).resolve().parents[1] / "hub"
PACKAGE = REGISTRY / "benchmarks" / "diswot_bench"
runner = CliRunner()


@pytest.fixture(scope="module")
def diswot_bench():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optunahub.load_local_module("benchmarks/diswot_bench", registry_root=str(REGISTRY))


def bench_score(tmp_path: Path, archs: list[str], *args: str) -> pd.DataFrame:
    out = tmp_path / "scores.csv"
    arch_args = [a for arch in archs for a in ("--arch", arch)]
    result = runner.invoke(app, ["score", "--space", "nb201", "--out", str(out), *arch_args, *args])
    assert result.exit_code == 0, result.output
    return read_commented_csv(out).set_index("arch")


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)])
def test_optunas_samplers_get_the_suites_scores(diswot_bench, sampler, tmp_path: Path, data_root: Path) -> None:
    problem = diswot_bench.Problem("nb201", "diswot", "cifar10", "resnet56", batch_size=8)
    study = optuna.create_study(directions=problem.directions, sampler=sampler)
    study.optimize(problem, n_trials=5)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 3
    scores = bench_score(tmp_path, [t.user_attrs["arch"] for t in done], "--proxy", "diswot", "--teacher", "resnet56",
                         "--batch-size", "8")  # fmt: skip
    test_acc = load_ground_truth("csv", data_root=data_root).table("cifar10")["test_acc"]
    for trial in done:
        arch = trial.user_attrs["arch"]
        assert trial.value == pytest.approx(scores.loc[arch, "score"], rel=1e-5)
        assert trial.user_attrs["index"] == scores.loc[arch, "index"]
        assert trial.user_attrs["test_acc"] == pytest.approx(test_acc[arch])
        assert arch == problem.arch(trial.params)


def test_the_search_space_is_the_spaces(diswot_bench, nb201) -> None:
    problem = diswot_bench.Problem("nb201", "params")
    assert problem.search_space == nb201.distributions()
    assert problem.directions == [optuna.study.StudyDirection.MAXIMIZE]
    two = diswot_bench.Problem("nb201", "params", objectives=("score", "flops"))
    assert two.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    params = nb201.to_params(nb201.arch_at(6111))
    score, flops = two.evaluate(params)
    assert flops == nb201.cost_on(nb201.arch_at(6111), "cifar10").flops and score == problem.evaluate(params)


def test_budgets_become_constraints_and_invalid_networks_are_pruned(diswot_bench, nb201) -> None:
    limit = 500_000
    problem = diswot_bench.Problem("nb201", "params", max_params=limit)
    study = optuna.create_study(directions=problem.directions, sampler=optuna.samplers.TPESampler(seed=1))
    study.enqueue_trial(dict.fromkeys(nb201.distributions(), "none"))  # no path from input to output
    study.optimize(problem, n_trials=12)
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.PRUNED and first.user_attrs["arch"].count("none") == 6
    for trial in study.trials[1:]:
        params = nb201.cost_on(nb201.parse(trial.user_attrs["arch"]), "cifar10").params
        assert trial.constraints == {"max_params": pytest.approx(params / limit - 1.0)}
    feasible = [t for t in study.trials if t.value is not None and all(v <= 0 for v in t.constraints.values())]
    assert feasible and all(t.value <= limit for t in feasible)  # the score of `params` is the parameter count


def test_a_pack_or_a_cache_answers_before_scoring(diswot_bench, nb201, tmp_path: Path) -> None:
    archs = [nb201.arch_at(i) for i in (1, 6111, 9000)]
    made = ScoreCache(f"sqlite:///{tmp_path / 'made.db'}")
    originals = {r.arch: r for r in Scorer(ScoringConfig(batch_size=4), ["synflow"], cache=made).score_many(archs)}
    export_pack(made, tmp_path / "pack")
    packed = diswot_bench.Problem("nb201", "synflow", batch_size=4, pack=tmp_path / "pack")
    for arch in archs:
        record = packed.score(nb201.to_params(arch))
        original = originals[nb201.to_str(arch)]
        assert record.cached and (record.score, record.seconds) == (original.score, original.seconds)
    fresh = packed.score(nb201.to_params(nb201.arch_at(42)))  # not in the pack: scored
    assert not fresh.cached and fresh.ok
    cache = f"sqlite:///{tmp_path / 'cache.db'}"
    diswot_bench.Problem("nb201", "synflow", batch_size=4, cache=cache).score(nb201.to_params(archs[0]))
    again = diswot_bench.Problem("nb201", "synflow", batch_size=4, cache=cache).score(nb201.to_params(archs[0]))
    assert again.cached and again.score == originals[nb201.to_str(archs[0])].score
    with pytest.raises(ValueError, match=r"holds no synflow scores of this problem's settings.*batch 4"):
        diswot_bench.Problem("nb201", "synflow", batch_size=8, pack=tmp_path / "pack")


def test_the_package_has_optunahubs_layout_and_a_two_line_example() -> None:
    assert local_packages(REGISTRY, "benchmarks") == ["benchmarks/diswot_bench"]
    for name in ("__init__.py", "README.md", "LICENSE"):
        assert (PACKAGE / name).is_file()
    readme = (PACKAGE / "README.md").read_text()
    front = re.match(r"---\n(.*?)\n---\n", readme, re.S)
    assert front and all(f"{key}:" in front.group(1) for key in ("author", "title", "description", "tags", "license"))
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert len(example) == 2 and 'load_module("benchmarks/diswot_bench")' in example[0]
