"""Bad input, command by command: one line naming the problem, a non-zero exit, no traceback, nothing partial.

Each case runs a real command on a real input made bad in one way (a damaged CIFAR-10 tarball cut from the
shared one, a folder where a file should be, an unreachable database, a garbage weights file, ...).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import sqlite3
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()
TARBALL = "cifar10/cifar10_jpg_q75.tar.gz"
UNREACHABLE = "postgresql+psycopg2://nobody@127.0.0.1:1/x"
HEADER = "index,arch,proxy,score,seconds,status,error\n"


def invoke(*args: object, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes], cut: bool = False) -> bytes:
    """A gzipped tar of ``members``; ``cut``: the tar ends inside its last member's data (an intact gzip
    stream around a truncated archive)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    if cut:
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            last = tar.getmembers()[-1]
        raw = raw[: last.offset_data + last.size // 2]
    return gzip.compress(raw)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, data_root) -> Path:
    """A folder of bad inputs: data roots with damaged CIFAR-10 tarballs, garbage files, a header-only table."""
    base = tmp_path_factory.mktemp("bad")
    whole = (data_root / TARBALL).read_bytes()
    image = _jpeg()
    tree = {f"train/cat/{i}.jpg": image for i in range(4)}
    tarballs = {
        "empty": b"",
        "corrupt": os.urandom(4096),
        "truncated": whole[:200_000],  # the gzip stream ends early
        "half": whole[: len(whole) // 2],
        "wrong-layout": _tar_gz({"pictures/cat/0.jpg": image}),
        "cut-tar": _tar_gz(tree, cut=True),
    }
    for name, data in tarballs.items():
        (base / name / "cifar10").mkdir(parents=True)
        (base / name / "cifar10" / "c.tar.gz").write_bytes(data)
    (base / "garbage.pt").write_bytes(os.urandom(300))
    (base / "empty.pt").write_bytes(b"")
    import torch

    torch.save({"stem.weight": torch.zeros(3, 3)}, base / "other-model.pt")  # readable, of another network
    (base / "a-file").write_text("not a folder\n")
    (base / "not-a-db.db").write_bytes(b"this is not an SQLite database" * 40)
    (base / "header-only.csv").write_text(HEADER)
    (base / "a-folder").mkdir()
    return base


@dataclass(frozen=True)
class Case:
    args: Callable[[Path, Path], list[object]]  # (bad inputs, this case's output folder) -> arguments
    words: tuple[str, ...]  # what the one line must say


def _score(root: str, extra: tuple[object, ...] = ()) -> Callable[[Path, Path], list[object]]:
    return lambda bad, out: [
        "score", "--proxy", "jacob_cov", "--arch", "1", "--batch-size", "8", "--out", out / "scores.csv",
        "--data-root", bad / root, *extra,
    ]  # fmt: skip


def _run(root: str | None = None, *extra: object) -> Callable[[Path, Path], list[object]]:
    def args(bad: Path, out: Path) -> list[object]:
        data = ["--data-root", bad / root] if root else []
        return [
            "run", "--proxy", "jacob_cov", "--sampler", "random", "--n-trials", "2", "--batch-size", "8",
            "--out", out / "run", "--cache", f"sqlite:///{out / 'cache.db'}", "--device", "cpu", "--no-progress",
            *data, *(e(bad, out) if callable(e) else e for e in extra),
        ]  # fmt: skip

    return args


def _train(*extra: object) -> Callable[[Path, Path], list[object]]:
    return lambda bad, out: [
        "train", "--arch", "1", "--epochs", "1", "--train-images", "32", "--test-images", "16",
        "--out", out / "train", *(e(bad, out) if callable(e) else e for e in extra),
    ]  # fmt: skip


DAMAGED = {
    "empty": ("empty",),
    "corrupt": ("not a readable tarball", "damaged"),
    "truncated": ("not a readable tarball", "truncated"),
    "half": ("not a readable tarball", "truncated"),
    "wrong-layout": ("no images under train/<class>/", "pictures/cat/0.jpg"),
    "cut-tar": ("not a readable tarball", "truncated"),
}

CASES: dict[str, Case] = {}
for _name, _words in DAMAGED.items():
    CASES[f"score-{_name}-tarball"] = Case(_score(_name), ("c.tar.gz", *_words))
    CASES[f"run-{_name}-tarball"] = Case(_run(_name), ("c.tar.gz", *_words))
CASES.update(
    {
        "train-damaged-tarball": Case(
            _train("--data-root", lambda bad, out: bad / "half"), ("c.tar.gz", "not a readable tarball")
        ),
        # an output folder that cannot be written: a file is in the way
        "score-out-under-a-file": Case(
            lambda bad, out: ["score", "--proxy", "params", "--arch", "1", "--out", bad / "a-file" / "s.csv"],
            ("cannot write", "a-file", "a file is in the way"),
        ),
        "run-out-under-a-file": Case(_run(None, "--out", lambda bad, out: bad / "a-file" / "run"), ("run folder",)),
        "train-out-under-a-file": Case(_train("--out", lambda bad, out: bad / "a-file" / "t"), ("cannot write",)),
        "train-teacher-out-under-a-file": Case(
            lambda bad, out: [
                "train-teacher",
                "--model",
                "resnet20",
                "--epochs",
                "1",
                "--out",
                bad / "a-file" / "t.pt",
            ],
            ("cannot write", "a-file"),
        ),
        "sweep-out-under-a-file": Case(
            lambda bad, out: [
                "sweep",
                "--samplers",
                "random",
                "--proxies",
                "params",
                "--n-trials",
                "2",
                "--out",
                bad / "a-file" / "sweep",
                "--cache",
                f"sqlite:///{out / 'c.db'}",
            ],
            ("sweep folder", "a file is in the way"),
        ),
        "report-out-under-a-file": Case(
            lambda bad, out: ["report", bad / "header-only.csv", "--out", bad / "a-file" / "r"], ("cannot write",)
        ),
        "export-out-under-a-file": Case(
            lambda bad, out: [
                "scores",
                "export",
                "--out",
                bad / "a-file" / "p",
                "--cache",
                f"sqlite:///{out / 'c.db'}",
            ],
            ("pack folder",),
        ),
        # score caches that cannot be opened
        "score-cache-unreachable": Case(
            lambda bad, out: [
                "score",
                "--proxy",
                "params",
                "--arch",
                "1",
                "--out",
                out / "s.csv",
                "--cache",
                UNREACHABLE,
            ],
            ("cannot open the score cache", "127.0.0.1", "Connection refused"),
        ),
        "score-cache-under-a-file": Case(
            lambda bad, out: [
                "score",
                "--proxy",
                "params",
                "--arch",
                "1",
                "--out",
                out / "s.csv",
                "--cache",
                f"sqlite:///{bad / 'a-file' / 'c.db'}",
            ],
            ("cannot open the score cache", "a-file"),
        ),
        "score-cache-not-a-database": Case(
            lambda bad, out: [
                "score",
                "--proxy",
                "params",
                "--arch",
                "1",
                "--out",
                out / "s.csv",
                "--cache",
                f"sqlite:///{bad / 'not-a-db.db'}",
            ],
            ("not-a-db.db", "file is not a database", "move it aside"),
        ),
        "run-cache-unreachable": Case(_run(None, "--cache", UNREACHABLE), ("cannot open the score cache", "127.0.0.1")),
        "run-cache-not-a-database": Case(
            _run(None, "--cache", lambda bad, out: f"sqlite:///{bad / 'not-a-db.db'}"), ("file is not a database",)
        ),
        "export-cache-unreachable": Case(
            lambda bad, out: ["scores", "export", "--out", out / "pack", "--cache", UNREACHABLE],
            ("cannot open the score cache",),
        ),
        # storage
        "run-storage-unreachable": Case(_run(None, "--storage", UNREACHABLE), ("cannot reach storage", "127.0.0.1")),
        "run-storage-is-a-folder": Case(
            _run(None, "--storage", lambda bad, out: bad / "a-folder"), ("--storage", "is a folder", "journal")
        ),
        # settings a run rejects before its study is made
        "run-batch-larger-than-the-data": Case(
            _run(None, "--batch-size", "100000"), ("--batch-size 100000", "50,000 training images")
        ),
        "run-negative-score-seed": Case(_run(None, "--score-seed", "-1"), ("--score-seed", "-1")),
        "run-zero-threads": Case(_run(None, "--threads", "0"), ("--threads", "bench run --help")),
        "correlate-without-scores": Case(lambda bad, out: ["correlate"], ("Missing argument", "--help")),
        # garbage weight files
        "score-garbage-teacher-weights": Case(
            lambda bad, out: [
                "score",
                "--proxy",
                "diswot",
                "--arch",
                "1",
                "--batch-size",
                "8",
                "--out",
                out / "s.csv",
                "--teacher-weights",
                bad / "garbage.pt",
            ],
            ("teacher weights", "garbage.pt", "not a readable PyTorch weights file"),
        ),
        "run-garbage-teacher-weights": Case(
            _run(None, "--proxy", "diswot", "--teacher-weights", lambda bad, out: bad / "garbage.pt"),
            ("teacher weights", "garbage.pt", "not a readable PyTorch weights file"),
        ),
        "run-empty-teacher-weights": Case(
            _run(None, "--proxy", "diswot", "--teacher-weights", lambda bad, out: bad / "empty.pt"),
            ("teacher weights", "empty.pt", "empty"),
        ),
        "run-teacher-weights-of-another-network": Case(
            _run(None, "--proxy", "diswot", "--teacher-weights", lambda bad, out: bad / "other-model.pt"),
            ("teacher weights", "other-model.pt", "do not fit teacher 'resnet56'", "missing"),
        ),
        "distill-garbage-teacher": Case(
            lambda bad, out: ["distill", "--arch", "1", "--teacher", bad / "garbage.pt", "--out", out / "d"],
            ("teacher checkpoint", "garbage.pt", "not a readable PyTorch weights file"),
        ),
        "kd-bench-garbage-teacher": Case(
            lambda bad, out: ["kd-bench", "--arch", "1", "--teacher", bad / "garbage.pt", "--workdir", out / "k"],
            ("teacher checkpoint", "garbage.pt"),
        ),
        # tables with a header and no rows
        "correlate-header-only": Case(lambda bad, out: ["correlate", bad / "header-only.csv"], ("header but no rows",)),
        # training settings
        "train-lr-nan": Case(_train("--lr", "nan"), ("--lr", "finite", "nan")),
        "train-lr-inf": Case(_train("--lr", "inf"), ("--lr", "finite")),
        "train-lr-zero": Case(_train("--lr", "0"), ("--lr", "positive")),
        "train-negative-train-images": Case(_train("--train-images", "-5"), ("--train-images", "-5")),
        "train-negative-test-images": Case(_train("--test-images", "-1"), ("--test-images", "-1")),
        "train-zero-epochs": Case(_train("--epochs", "0"), ("--epochs", "positive")),
        "train-zero-batch": Case(_train("--batch-size", "0"), ("--batch-size", "positive")),
        "train-negative-weight-decay": Case(_train("--weight-decay", "-1"), ("--weight-decay",)),
    }
)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_leaves_nothing(name, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default output would land here
    out = tmp_path / "out"
    out.mkdir()
    case = CASES[name]
    before = sorted(p.relative_to(bad) for p in bad.rglob("*"))
    result = invoke(*case.args(bad, out))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in case.words:
        assert word in lines[0], (word, lines[0])
    # nothing partial: no table, run folder, journal or temporary file, here or among the inputs
    left = [p.relative_to(out) for p in out.rglob("*") if not p.name.startswith("cache.db")]
    assert left == [], left
    assert list(tmp_path.iterdir()) == [out]
    assert sorted(p.relative_to(bad) for p in bad.rglob("*")) == before


@pytest.mark.parametrize("name", list(DAMAGED))
def test_data_check_opens_what_it_reports(name, bad):
    result = invoke("data", "check", "--data-root", bad / name)
    assert result.exit_code == 1 and "Traceback" not in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ cifar10 "))
    assert "no (" in row and "yes" not in row
    assert DAMAGED[name][0] in " ".join(result.output.split())


def test_data_check_json_says_what_is_wrong(bad, data_root):
    import json

    broken = json.loads(invoke("data", "check", "--data-root", bad / "half", "--json").stdout)
    assert broken["found"]["cifar10"] is None
    assert "not a readable tarball" in broken["problems"]["cifar10"]
    good = json.loads(invoke("data", "check", "--data-root", data_root, "--json").stdout)
    assert good["images"]["cifar10"] == {"train": 50_000, "test": 10_000} and good["problems"] == {}


def test_debug_shows_the_traceback(bad, tmp_path):
    cache = f"sqlite:///{bad / 'not-a-db.db'}"
    args = ["score", "--proxy", "params", "--arch", "1", "--out", tmp_path / "s.csv", "--cache", cache]
    for result in (invoke("--debug", *args), invoke(*args, env={"BENCH_DEBUG": "1"})):
        assert result.exit_code == 1
        assert type(result.exception).__name__ == "DamagedCacheError"  # raised, not printed as one line
        assert "error:" not in result.output
    assert invoke(*args, env={"BENCH_DEBUG": "0"}).output.startswith("error: score cache")


def test_optunas_trial_failure_traceback_is_left_to_the_commands_line(monkeypatch):
    import optuna

    from bench.cli._errors import quiet_trial_tracebacks

    records: list[logging.LogRecord] = []
    seen = logging.Handler(logging.WARNING)
    seen.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(seen)
    quiet_trial_tracebacks()

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("x", 0, 3)
        raise ValueError("the score went wrong")

    try:
        for debug in ("0", "1"):
            monkeypatch.setenv("BENCH_DEBUG", debug)
            with pytest.raises(ValueError, match="went wrong"):
                optuna.create_study().optimize(objective, n_trials=1)
    finally:
        logging.getLogger("optuna").removeHandler(seen)
    # Only the run with --debug logged Optuna's "Trial 0 failed" (with its traceback).
    assert [r.getMessage().split(" with ")[0] for r in records] == ["Trial 0 failed"] * 2
    assert records[0].exc_info is not None


def test_a_header_only_score_table_is_never_left(tmp_path, bad):
    out = tmp_path / "scores.csv"
    result = invoke(*_score("corrupt")(bad, tmp_path)[:-2], "--data-root", bad / "corrupt")
    assert result.exit_code != 0
    assert not out.exists() and not list(tmp_path.glob("*partial*")) and not list(tmp_path.glob(".*"))


def test_conflicting_duplicates_and_non_finite_scores_in_correlate(tmp_path, nb201, data_root):
    import json

    archs = [nb201.to_str(nb201.arch_at(i)) for i in range(0, 3000, 100)]
    scores = [str(nb201.cost(nb201.parse(a), 10).params) for a in archs]

    def table(name: str, rows: list[tuple[str, str]]) -> Path:
        path = tmp_path / name
        path.write_text(HEADER + "".join(f"0,{a},params,{s},0,ok,\n" for a, s in rows))
        return path

    nonfinite = table("nonfinite.csv", list(zip(archs, ["nan", "inf", *scores[2:]])))
    common = ["-g", "csv", "--n-resamples", "0", "--dataset", "cifar10", "--data-root", data_root]
    result = invoke("correlate", nonfinite, *common, "--json")
    assert result.exit_code == 0, result.output
    (entry,) = [e for e in json.loads(result.stdout)["proxies"] if e["cells"] == "all"]
    assert entry["nonfinite"] == 2 and entry["n"] == len(archs) - 2 and entry["kendall"] is not None
    clash = table("clash.csv", [*zip(archs, scores), (archs[3], "1.0")])
    result = invoke("correlate", clash, *common)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1
    assert "conflicting rows for proxy 'params'" in lines[0] and archs[3] in lines[0]


def test_an_sqlite_error_is_described_with_its_hint():
    from bench.cli._errors import describe

    message, code = describe(sqlite3.DatabaseError("file is not a database"))
    assert code == 1 and "move it aside" in message
    assert describe(RuntimeError("a bug")) is None  # a bug keeps its traceback


@pytest.mark.slow  # reads the whole CIFAR-10 training split
def test_a_diverged_training_is_recorded_as_failed_not_as_an_accuracy(tmp_path):
    import json

    out = tmp_path / "train"
    result = invoke("train", "--arch", "1", "--epochs", "1", "--lr", "1e30", "--train-images", "32",
                    "--test-images", "16", "--batch-size", "16", "--no-augment", "--out", out)  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: 1 of 1 student(s) failed (training diverged")
    record = json.loads((out / "result.json").read_text())
    assert record["test_acc"] == [None]
    assert list(record["failed"].values()) == ["training diverged: the loss was not finite from epoch 1"]
    assert not (out / "student0.pt").exists()


def _optuna_trial_failure_logged() -> bool:
    """In a worker process: run a study whose one trial fails; whether Optuna's "Trial 0 failed" got through."""
    import optuna

    records: list[logging.LogRecord] = []
    seen = logging.Handler(logging.WARNING)
    seen.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(seen)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("x", 0, 3)
        raise ValueError("the score went wrong")

    with contextlib.suppress(ValueError):
        optuna.create_study().optimize(objective, n_trials=1)
    return any("Trial 0 failed" in r.getMessage() for r in records)


def _optuna_trial_success_logged() -> bool:
    """In a worker process: whether Optuna's "Trial 0 finished" line of a successful trial got through."""
    import optuna

    records: list[logging.LogRecord] = []
    seen = logging.Handler(logging.DEBUG)
    seen.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(seen)
    optuna.create_study().optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=1)
    return any("Trial 0 finished" in r.getMessage() for r in records)


@pytest.mark.parametrize("debug", [False, True])
def test_sweep_worker_processes_filter_trial_tracebacks_as_the_command_does(debug):
    import functools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bench.cli._errors import worker_setup

    context = multiprocessing.get_context("spawn")  # as run_sweep starts its workers
    setup = functools.partial(worker_setup, debug)
    with ProcessPoolExecutor(1, mp_context=context, initializer=setup) as pool:
        assert pool.submit(_optuna_trial_failure_logged).result() is debug
        assert pool.submit(_optuna_trial_success_logged).result() is False  # the command's quiet Optuna
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_optuna_trial_failure_logged).result() is True  # what a worker did without it
