"""Tables and figures: formats, bold best cells, provenance, a real pdflatex, the same bytes twice."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis import (
    BootstrapSettings,
    Column,
    Provenance,
    Table,
    TruthSource,
    load_score_runs,
    search_report,
    space_truth,
    write_correlation_report,
    write_search_report,
)
from bench.analysis._scores import read_commented_csv
from bench.ground_truth import load_ground_truth

from .analysis_data import real_score_files, real_trials

COMMAND = "bench test-render"
DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\usepackage{siunitx}
\usepackage{graphicx}
\begin{document}
\input{%s}
\end{document}
"""


def provenance() -> Provenance:
    return Provenance(command=COMMAND, config={"k": 1}, versions={"python": "3"}, commit="abc")


def write_reports(out: Path, data_root: Path) -> list[Path]:
    gt = load_ground_truth("csv", data_root=data_root)
    truths = [TruthSource("csv test_acc", gt, "test_acc")]
    runs = load_score_runs(real_score_files(), defaults={"dataset": "cifar10", "space": "nb201"})
    _, written = write_correlation_report(
        runs, truths, out / "correlation", bootstrap=BootstrapSettings(n_resamples=100), command=COMMAND
    )
    truth = space_truth(gt.accuracy("cifar10", "test_acc"), space="nb201", dataset="cifar10")
    report = search_report(real_trials(), {("nb201", "cifar10"): truth}, checkpoints=(10, 20))
    written += write_search_report(
        report,
        out / "search",
        config={"analysis": "search"},
        true_fronts={("nb201", "cifar10"): truth.true_front()},
        command=COMMAND,
    )
    return written


@pytest.fixture(scope="module")
def reports(tmp_path_factory, data_root) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("reports")
    return out, write_reports(out, data_root)


def test_every_table_and_figure_is_written_with_provenance(reports):
    out, written = reports
    names = {p.relative_to(out).as_posix() for p in written}
    for stem in (
        "correlation/correlation",
        "correlation/correlation_seeds",
        "search/search",
        "search/search_anytime",
        "search/search_pairwise",
        "search/search_ranks",
    ):
        assert {f"{stem}.tex", f"{stem}.md", f"{stem}.csv"} <= names
    assert {"search/search_runs.md", "search/search_runs.csv", "search/anytime_regret.csv"} <= names
    assert "search/search_tests.csv" in names
    figures = {n for n in names if n.endswith((".png", ".pdf"))}
    for stem in (
        "search/plots/anytime_regret_nb201_cifar10",
        "search/plots/pareto_nb201_cifar10",
        "correlation/plots/scatter_cifar10_csv_test_acc_params",
        "correlation/plots/box_spearman_cifar10_csv_test_acc_all",
        "correlation/plots/box_spearman_cifar10_csv_test_acc_valid",
        "search/plots/cd_nb201_cifar10",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figures
    for path in written:
        head = path.read_bytes()[:40]
        if path.suffix == ".png":
            assert head.startswith(b"\x89PNG")
        elif path.suffix == ".pdf":
            assert head.startswith(b"%PDF")
        else:
            first = path.read_text().splitlines()[:2]
            assert f"made by: {COMMAND}" in "\n".join(first), path


def test_csv_holds_the_full_precision_numbers(reports):
    out, _ = reports
    table = read_commented_csv(out / "search" / "search.csv")
    runs = read_commented_csv(out / "search" / "search_runs.csv")
    mean = runs.groupby(["sampler", "proxy"])["chosen_acc"].mean()
    for row in table.itertuples():
        assert row.chosen_acc_mean == pytest.approx(mean[(row.sampler, row.proxy)], abs=1e-12)


def test_markdown_bolds_the_best_mean_of_each_view(reports):
    out, _ = reports
    table = read_commented_csv(out / "correlation" / "correlation_seeds.csv")
    best = {cells: group.loc[group["spearman_mean"].idxmax(), "proxy"] for cells, group in table.groupby("cells")}
    assert set(best) == {"all", "valid"}
    lines = [line for line in (out / "correlation" / "correlation_seeds.md").read_text().splitlines() if "|" in line]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    column = header.index("Spearman \u03c1")
    view = ""
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        view = cells[header.index("cells")] or view  # a group's key is shown on its first row only
        assert cells[column].startswith("**") == (cells[header.index("proxy")] == best[view])


def test_search_tables_bold_nothing_three_seeds_cannot_separate_and_say_why(reports):
    out, _ = reports
    for name in ("search", "search_anytime", "search_ranks", "search_pairwise"):
        text = (out / "search" / f"{name}.md").read_text()
        assert "Warning: nb201/cifar10: with 3 seeds" in text, name
        assert "no difference can be significant at 0.05" in text
        table = text.split("\n\n", 2)[2]
        assert "**" not in table, f"{name} bolds a cell no test separates"
        latex = (out / "search" / f"{name}.tex").read_text()
        assert r"\benchbest{" not in latex.split(r"\begin{table}")[1]
    pairwise = read_commented_csv(out / "search" / "search_pairwise.csv")
    assert (pairwise["n_pairs"] == 3).all() and (pairwise["p"] >= 0.25).all()


def test_the_critical_difference_diagram_embeds_truetype_fonts(reports):
    out, _ = reports
    pdf = (out / "search" / "plots" / "cd_nb201_cifar10.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    for figure in (out / "correlation" / "plots").glob("*.pdf"):
        assert b"/Type3" not in figure.read_bytes(), figure


def test_same_inputs_give_the_same_bytes(reports, tmp_path, data_root):
    out, written = reports
    again = write_reports(tmp_path, data_root)
    digest = {p.relative_to(out): hashlib.sha256(p.read_bytes()).hexdigest() for p in written}
    assert digest == {p.relative_to(tmp_path): hashlib.sha256(p.read_bytes()).hexdigest() for p in again}


@pytest.mark.latex
def test_every_latex_table_compiles_with_pdflatex(reports, tmp_path):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing on CI: .ci/run installs texlive")
        pytest.skip("pdflatex is not installed")
    _, written = reports
    tables = [p for p in written if p.suffix == ".tex"]
    # every table, the all/valid correlation tables and the ranks table with its warning caption included
    assert {p.stem for p in tables} >= {"correlation", "correlation_seeds", "search", "search_ranks", "search_pairwise"}
    for table in tables:
        folder = tmp_path / table.parent.name / table.stem
        folder.mkdir(parents=True)
        shutil.copy(table, folder / "table.tex")
        (folder / "doc.tex").write_text(DOCUMENT % "table.tex")
        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{table} does not compile:\n{result.stdout[-3000:]}"
        assert (folder / "doc.pdf").stat().st_size > 1000


def test_table_cells_best_marks_groups_and_missing_values():
    frame = pd.DataFrame(
        {
            "group": ["a", "a", "a", "a", "b", "b", "c", "c"],
            "name": ["x_1", "y", "z", "w", "x_1", "y", "x_1", "y"],
            "value": [0.5004, 0.4996, np.nan, 0.3, -0.0001, 0.2, 0.7001, 0.6999],
            "std": [0.01, 0.02, np.nan, np.nan, np.nan, 0.1, np.nan, np.nan],
            "p": [0.0001, 0.2, 1.0, 0.3, 0.05, 0.5, 0.5, 0.5],
        }
    )
    table = Table(
        name="t",
        frame=frame,
        columns=[
            Column("group", "group", kind="text"),
            Column("name", "name", kind="text"),
            Column("value", "value", digits=3, spread="std", best="max"),
            Column("p", "p", kind="pvalue"),
        ],
        caption="A 100% test_caption",
        label="tab:t",
        provenance=provenance(),
        groups=["group"],
    )
    md = table.cells("md")
    # 0.5004 and 0.4996 both round to 0.500: both are best in group a; 0.200 beats -0.000 in group b; every
    # cell of group c rounds to 0.700: nothing is best there
    assert md["value"].tolist() == [
        "**0.500 ± 0.010**", "**0.500 ± 0.020**", "--", "0.300", "0.000", "**0.200 ± 0.100**", "0.700", "0.700"
    ]  # fmt: skip
    assert md["group"].tolist() == ["a", "", "", "", "b", "", "c", ""]
    assert md["p"].tolist()[:2] == ["< 0.001", "0.200"]
    latex = table.to_latex()
    assert r"\benchbest{\num{0.500 \pm 0.010}}" in latex
    assert r"x\_1" in latex and r"100\% test\_caption" in latex
    assert r"\num{< 0.001}" in latex and r"\toprule" in latex and r"\label{tab:t}" in latex
    assert latex.startswith(f"% made by: {COMMAND}\n")


def test_table_rejects_unknown_columns_and_formats():
    with pytest.raises(ValueError, match="lacks"):
        Table("t", pd.DataFrame({"a": [1]}), [Column("b", "b")], "c", "l", provenance())
    table = Table("t", pd.DataFrame({"a": [1.0]}), [Column("a", "a")], "c", "l", provenance())
    with pytest.raises(ValueError, match="Valid choices: latex, md, csv"):
        table.render("html")


def test_emphasis_bolds_exactly_the_cells_a_test_chose():
    frame = pd.DataFrame({"name": ["a", "b", "c"], "value": [0.9, 0.5, 0.1], "separated": [False, False, False]})
    columns = [Column("name", "name", kind="text"), Column("value", "value", digits=2, emphasis="separated")]
    table = Table("t", frame, columns, "c", "tab:t", provenance())
    assert table.cells("md")["value"].tolist() == ["0.90", "0.50", "0.10"]  # the largest, but no test separated it
    assert r"\benchbest" not in table.to_latex().split(r"\begin{table}")[1]
    chosen = Table("t", frame.assign(separated=[True, False, False]), columns, "c", "tab:t", provenance())
    assert chosen.cells("md")["value"].tolist() == ["**0.90**", "0.50", "0.10"]
