from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("BENCH_DATA_ROOT") or REPO.parent / "shared" / "data")
NB201_CSV = DATA_ROOT / "nb201" / "nats_bench_test_acc.csv"


def pytest_configure(config: pytest.Config) -> None:
    if not (DATA_ROOT / "cifar10").is_dir():
        raise pytest.UsageError(f"the tests read real data from {DATA_ROOT}; set BENCH_DATA_ROOT to the shared data")
    os.environ.setdefault("BENCH_DATA_ROOT", str(DATA_ROOT))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        # One thread per test worker: workers x threads beyond the cores makes every kernel wait on others.
        # BENCH_THREADS holds the commands the tests run to it too.
        torch.set_num_threads(1)
        os.environ["BENCH_THREADS"] = "1"


@pytest.fixture(scope="session")
def data_root() -> Path:
    return DATA_ROOT


@pytest.fixture(scope="session")
def nb201():
    from spaces import get_space

    return get_space("nb201")
