"""``bench dashboard``: optuna-dashboard on a finished run's storage, read back through its HTTP API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.dashboard import RESULT_ATTR, dashboard_server, storage_of
from bench.search._objective import RESULT_ATTR as OBJECTIVE_RESULT_ATTR

runner = CliRunner()


def bench(*args) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dash")
    code, _, err = bench(
        "run", "--proxy", "params", "--sampler", "random", "--n-trials", "6", "--out", folder / "run",
        "--cache", f"sqlite:///{folder / 'scores.db'}", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    return folder / "run"


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return json.loads(response.read())


def serve(target: str):
    server, storage = dashboard_server(target, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, storage, thread


def test_the_dashboard_serves_a_run_with_its_records_as_user_attributes(finished_run: Path) -> None:
    server, storage, thread = serve(str(finished_run))
    try:
        assert storage == str((finished_run / "journal.log").resolve())
        (study,) = get(server.server_port, "/api/studies")["study_summaries"]
        assert study["study_name"] == json.loads((finished_run / "manifest.json").read_text())["study"]
        detail = get(server.server_port, f"/api/studies/{study['study_id']}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    trials = pd.read_csv(finished_run / "trials.csv").set_index("number")
    assert len(detail["trials"]) == len(trials) == 6
    for trial in detail["trials"]:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        row = trials.loc[trial["number"]]
        assert attrs["arch"] == row["arch"] and int(attrs["index"]) == row["index"]
        assert float(attrs["test_acc"]) == pytest.approx(row["test_acc"])
        assert float(attrs["val_acc"]) == pytest.approx(row["val_acc"])
        assert RESULT_ATTR not in attrs  # the record is shown flat, not as one JSON string
    sortable = {a["key"] for a in detail["union_user_attrs"] if a["sortable"]}
    assert {"index", "test_acc", "val_acc", "params", "score"} <= sortable


def test_bench_dashboard_serves_until_stopped(finished_run: Path) -> None:
    command = [sys.executable, "-m", "bench", "dashboard", str(finished_run), "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # the address, printed once the server listens
        port = int(re.search(r"http://localhost:(\d+)/dashboard", line).group(1))
        (study,) = get(port, "/api/studies")["study_summaries"]
        assert str(finished_run / "journal.log") in line and study["study_name"].endswith("-s0")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_dashboard_reads_the_attribute_the_objective_writes() -> None:
    assert RESULT_ATTR == OBJECTIVE_RESULT_ATTR


def test_storages_named_by_file_url_and_folder(finished_run: Path, tmp_path: Path) -> None:
    journal = finished_run / "journal.log"
    assert storage_of(str(journal)) == str(journal.resolve())
    assert storage_of("postgresql://u:p@host/db") == "postgresql://u:p@host/db"
    sqlite = tmp_path / "study.db"
    code, _, err = bench(
        "run", "--proxy", "params", "--sampler", "random", "--n-trials", "2", "--out", tmp_path / "r",
        "--storage", f"sqlite:///{sqlite}", "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert storage_of(str(sqlite)) == f"sqlite:///{sqlite.resolve()}"  # a SQLite file is told by its header
    assert storage_of(str(tmp_path / "r")) == f"sqlite:///{sqlite.resolve()}"  # the manifest's storage
    server, _, thread = serve(str(tmp_path / "r"))
    try:
        (study,) = get(server.server_port, "/api/studies")["study_summaries"]
        assert len(get(server.server_port, f"/api/studies/{study['study_id']}")["trials"]) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def memory_run(folder: Path) -> Path:
    (folder / "manifest.json").write_text(json.dumps({"study": "s", "storage": "memory"}))
    return folder


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere", "is neither a run folder, a journal file nor a database URL"),
        (lambda p: p, "not a run folder"),
        (memory_run, "kept its study in memory"),
    ],
)
def test_bad_targets_are_one_line(tmp_path: Path, make, message: str) -> None:
    code, _, err = bench("dashboard", make(tmp_path), "--port", "0")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_port_in_use_is_named(finished_run: Path) -> None:
    server, _, thread = serve(str(finished_run))
    try:
        code, _, err = bench("dashboard", finished_run, "--port", server.server_port)
        assert code == 2 and f"cannot listen on 127.0.0.1:{server.server_port}" in err, err
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
