"""Reproducible sessions: tests, slow checks, lint. ``nox -s tests`` is what CI runs."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
# Torch is taken from the pinned local wheels where they exist; the ranges in pyproject admit others.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"] if os.environ.get("BENCH_PIN_TORCH", "1") == "1" else []


def _env() -> dict[str, str]:
    shared = ROOT.parent / "shared" / "data"
    env = {}
    if "BENCH_DATA_ROOT" not in os.environ and shared.is_dir():
        env["BENCH_DATA_ROOT"] = str(shared)
    return env


def _install(session: nox.Session) -> None:
    if TORCH:
        session.install(*TORCH)
    session.install("-e", ".[test]")


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite: fast tests on real data (minutes on 2 CPU cores)."""
    _install(session)
    session.run("pytest", "-n", os.environ.get("BENCH_TEST_WORKERS", "2"), *session.posargs, env=_env())


@nox.session
def slow(session: nox.Session) -> None:
    """Slow checks: every architecture built, correlations against published values."""
    _install(session)
    session.run("pytest", "-m", "slow", *session.posargs, env=_env())


@nox.session
def proxies_slow(session: nox.Session) -> None:
    """Proxies' Spearman on a seeded NAS-Bench-201 sample, in wide bands around the published values."""
    _install(session)
    session.run("pytest", "-m", "slow", "tests/test_proxies_slow.py", *session.posargs, env=_env())


@nox.session
def faults(session: nox.Session) -> None:
    """Faults injected into real runs: journals cut at several offsets, a worker killed and left unreaped, damaged
    score caches (the PostgreSQL case where $BENCH_TEST_POSTGRES_URL names a server)."""
    _install(session)
    session.run("pytest", "-m", "faults", *session.posargs, env=_env())


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def speed(session: nox.Session) -> None:
    """Students/second of the one-at-a-time scorer and the batched engine, side by side (pass args after --)."""
    _install(session)
    session.run("python", "benchmarks/speed.py", *session.posargs, env=_env())


@nox.session
def sampler_overhead(session: nox.Session) -> None:
    """Each sampler's cost per trial at 1,000 trials with cached scores, and the bare bench run's wall time."""
    _install(session)
    session.run("python", "benchmarks/sampler_overhead.py", "--bare", *session.posargs, env=_env())


@nox.session
def first_run(session: nox.Session) -> None:
    """A new user's first minutes: the listings' CPU time, a cold score, the default run quiet and beside two busy
    processes, per stage."""
    _install(session)
    session.run("python", "benchmarks/first_run.py", *session.posargs, env=_env())


@nox.session
def autodistil_speed(session: nox.Session) -> None:
    """SuperLM steps per second per AutoDistil sub-space and GLUE fine-tuning time per task."""
    _install(session)
    session.run("python", "benchmarks/autodistil_speed.py", *session.posargs, env=_env())


@nox.session
def train_speed(session: nox.Session) -> None:
    """Training epochs: a DataLoader loop against the trainer, one student and packed, side by side."""
    _install(session)
    session.run("python", "benchmarks/train_speed.py", *session.posargs, env=_env())


DISTILL = Path("results") / "distill-demo"


@nox.session
def distill(session: nox.Session) -> None:
    """The distillation pipeline end to end at toy scale on a CPU (minutes): a teacher, eight students
    trained vanilla and with KD by two workers, proxies scored on the same students, their correlation
    with KD accuracy and the distillation table, under results/distill-demo/."""
    import shutil

    _install(session)
    env = _env()
    shutil.rmtree(ROOT / DISTILL, ignore_errors=True)
    budget = ["--train-images", "512", "--test-images", "500", "--batch-size", "64", "--device", "cpu"]
    teacher = str(DISTILL / "resnet20-cifar10.pt")
    session.run("bench", "train-teacher", "--model", "resnet20", "--epochs", "3", *budget, "--out", teacher, env=env)
    kd_bench = ["bench", "kd-bench", "--teacher", teacher, "--sample", "8", "--seed", "0", "--epochs", "2",
                "--group-size", "2", "--workdir", str(DISTILL / "kd-bench"), *budget]  # fmt: skip
    # Two workers share the students through the storage in the work folder.
    session.run("bash", "-c", " ".join(kd_bench) + " > /dev/null & " + " ".join(kd_bench) + "; wait", env=env,
                external=True)  # fmt: skip
    import csv

    kd_csv = DISTILL / "kd-bench" / "kd.csv"
    with open(ROOT / kd_csv) as rows:
        students = [arg for row in csv.DictReader(rows) for arg in ("--arch", row["arch"])]
    table = f"kd:{kd_csv}"
    scores = []
    # The same students, scored with two seeds (batch and initialisation): the table's spread over seeds.
    for seed in (0, 1):
        scores.append(str(DISTILL / f"scores-seed{seed}.csv"))
        session.run(
            "bench", "score", "--proxy", "diswot,diswot_relation,kd,sp,params", *students, "--seed", str(seed),
            "--batch-size", "32", "--teacher", "resnet20", "--teacher-weights", teacher, "--out", scores[-1],
            env=env,
        )  # fmt: skip
    session.run("bench", "correlate", scores[0], "-g", table, "--out", str(DISTILL / "correlation"), env=env)
    session.run("bench", "distill-report", *scores, "-g", table, "--out", str(DISTILL / "table"), env=env)


REPRODUCE = Path("results") / "reproduce"
#: Ten seeds: with six methods (15 pairs) the exact signed-rank test can reach 15 * 2 / 2**10 = 0.03 after
#: Holm's correction; three seeds could never go below 1.
REPRODUCE_SEEDS = 10


@nox.session
def reproduce(session: nox.Session) -> None:
    """A small end-to-end pipeline on the CPU, minutes: score 30 fixed architectures with cheap proxies under
    ten scoring seeds, correlate them paired by architecture, run a sweep of 3 samplers x 2 proxies x ten seeds,
    report with paired tests. Tables and figures land under results/reproduce/ with a SHA256SUMS of them: the
    same seeds give the same bytes."""
    import hashlib
    import shutil

    _install(session)
    env = _env()
    out = ROOT / REPRODUCE
    shutil.rmtree(out, ignore_errors=True)  # a reproduction computes everything again, cache included
    scores = []
    for seed in range(REPRODUCE_SEEDS):
        scores.append(str(REPRODUCE / "scores" / f"seed{seed}.csv"))
        # --sample-seed (0) draws the architectures; --seed varies only the batch and the initialisation.
        session.run(
            "bench", "score", "--proxy", "params,l2_norm,synflow", "--sample", "30", "--seed", str(seed),
            "--device", "cpu", "--out", scores[-1], env=env,
        )  # fmt: skip
    session.run("bench", "correlate", *scores, "--out", str(REPRODUCE / "correlation"), env=env)
    session.run(
        "bench", "sweep", "--samplers", "random,tpe,nsga2", "--proxies", "params,l2_norm",
        "--seeds", f"0-{REPRODUCE_SEEDS - 1}", "--n-trials", "30", "--device", "cpu",
        "--cache", f"sqlite:///{REPRODUCE}/scores.db", "--out", str(REPRODUCE / "sweep"), env=env,
    )  # fmt: skip
    session.run(
        "bench", "report", str(REPRODUCE / "sweep"), "--out", str(REPRODUCE / "search"), "--at", "10,20,30", env=env
    )
    # Scores and trials also hold timings and dates; the tables and figures made from them do not.
    made = sorted(p for d in ("correlation", "search") for p in (out / d).rglob("*") if p.is_file())
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}\n" for p in made)
    (out / "SHA256SUMS").write_text(sums)
    session.log(f"{len(made)} tables and figures under {REPRODUCE}; their digests in {REPRODUCE / 'SHA256SUMS'}")


PAPER_EXPERIMENT = "experiments/nb201-cifar10.toml"
PAPER_OUT = "docs/results"


@nox.session
def paper(session: nox.Session) -> None:
    """The paper's tables and figures (docs/results/) from the committed score pack and search trials, made twice:
    the second time elsewhere, and both must be the same bytes. Nothing is scored; minutes on a CPU."""
    import filecmp
    import shutil
    import tempfile

    _install(session)
    env = _env()
    shutil.rmtree(ROOT / PAPER_OUT, ignore_errors=True)
    session.run("bench", "paper", PAPER_EXPERIMENT, "--out", PAPER_OUT, env=env)
    with tempfile.TemporaryDirectory() as tmp:
        session.run("bench", "paper", PAPER_EXPERIMENT, "--out", f"{tmp}/again", env=env)
        made = sorted(p.relative_to(ROOT / PAPER_OUT) for p in (ROOT / PAPER_OUT).rglob("*") if p.is_file())
        _, differ, missing = filecmp.cmpfiles(ROOT / PAPER_OUT, f"{tmp}/again", [str(p) for p in made], shallow=False)
        if differ or missing:
            session.error(f"not the same bytes twice: {', '.join(differ + missing)}")
    session.log(f"{len(made)} tables and figures under {PAPER_OUT}, the same bytes twice")
