"""The informational commands and their error handling, through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_arch_json_by_index_and_by_string(nb201):
    by_index = json.loads(invoke("arch", "1", "--json").stdout)
    by_string = json.loads(invoke("arch", by_index["arch"], "--json").stdout)
    assert by_index == by_string
    assert set(by_index) == {"index", "arch", "unique", "connected", "params", "flops", "accuracy"}
    assert by_index["index"] == 1 and by_index["connected"] is True
    assert by_index["params"] == {"cifar10": 802426, "cifar100": 808276, "ImageNet16-120": 809576}
    assert by_index["flops"]["cifar10"] == nb201.cost(nb201.arch_at(1), 10).flops
    assert by_index["flops"]["ImageNet16-120"] == nb201.cost_on(nb201.arch_at(1), "ImageNet16-120").flops
    assert by_index["flops"]["ImageNet16-120"] < by_index["flops"]["cifar10"] / 3  # 16x16 images
    assert by_index["accuracy"]["cifar10"]["test_acc"] == pytest.approx(93.66, abs=0.01)
    assert by_index["accuracy"]["cifar100"]["val_acc"] > 60


def test_arch_table_output():
    result = invoke("arch", "0")
    assert result.exit_code == 0
    assert "index 0" in result.stdout and "connected: yes" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch", "20000"], "out of range 0..15624"),
        (["arch", "|nor_conv_3x3~0|+|bad~0|"], "node groups"),
        (["arch", "1", "--space", "nb301"], "unknown space 'nb301'. Did you mean 'nb201'?"),
        (["arch", "1", "-g", "foo"], "unknown ground truth 'foo'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output


def test_data_check(data_root):
    result = invoke("data", "check", "--data-root", str(data_root), "--json")
    assert result.exit_code == 0
    found = json.loads(result.stdout)["found"]
    assert "cifar10_jpg_q75" in found["cifar10"]
    assert found["nb201 test accuracies"].endswith("nats_bench_test_acc.csv")
    table = invoke("data", "check", "--data-root", str(data_root))
    assert table.exit_code == 0 and "cifar10" in table.stdout


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "arch", "nope"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
