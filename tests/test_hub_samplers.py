"""OptunaHub samplers (``--sampler hub:...``) from a local registry folder: run, sweep, report, manifest, errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.analysis._scores import read_commented_csv
from bench.cli import app
from bench.search import RunConfig, join_worker, start_worker, trial_result
from bench.search._hub import HubSampler, folder_digest, parse_sampler_options

runner = CliRunner()
HUB = "hub:samplers/fixed_random"

SAMPLER_PY = '''
from __future__ import annotations

import numpy as np
import optunahub


class FixedRandomSampler(optunahub.samplers.SimpleBaseSampler):
    """Uniform random choices, with some parameters held at fixed values."""

    def __init__(self, search_space=None, seed=None, fixed=None):
        super().__init__(search_space, seed)
        self._rng = np.random.RandomState(seed)
        self._fixed = dict(fixed or {})

    def sample_relative(self, study, trial, search_space):
        params = {}
        for name, dist in search_space.items():
            choice = dist.choices[self._rng.randint(len(dist.choices))]
            params[name] = self._fixed.get(name, choice)
        return params
'''


def make_registry(root: Path) -> Path:
    """A local OptunaHub registry holding one sampler package, in the registry's layout."""
    package = root / "samplers" / "fixed_random"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from .sampler import FixedRandomSampler\n\n__all__ = ['FixedRandomSampler']\n"
    )
    (package / "sampler.py").write_text(SAMPLER_PY)
    (package / "README.md").write_text(textwrap.dedent("""\
        ---
        author: the suite's tests
        title: Fixed random sampler
        description: Random search with some parameters held fixed.
        tags: [sampler]
        optuna_versions: [5.0.0]
        license: MIT License
        ---
        """))  # fmt: skip
    (package / "LICENSE").write_text("MIT License\n")
    two = root / "samplers" / "two"  # two classes, one that takes no seed
    two.mkdir()
    (two / "__init__.py").write_text(textwrap.dedent("""\
        import optuna


        class Seeded(optuna.samplers.RandomSampler):
            pass


        class Unseeded(optuna.samplers.RandomSampler):
            def __init__(self):
                super().__init__(seed=None)
        """))  # fmt: skip
    return root


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


def bench(*args) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def hub_run(tmp_path: Path, registry: Path, name: str, *extra) -> Path:
    out = tmp_path / name
    code, _, err = bench(
        "run", "--sampler", HUB, "--hub-registry", registry, "--proxy", "params", "--n-trials", "8",
        "--out", out, "--cache", f"sqlite:///{tmp_path / 'scores.db'}", "--no-progress", *extra,
    )  # fmt: skip
    assert code == 0, err
    return out


def test_a_local_hub_sampler_runs_with_its_options_seed_and_provenance(tmp_path: Path, registry: Path) -> None:
    fixed = '{"edge_0_1": "nor_conv_3x3"}'
    out = hub_run(tmp_path, registry, "a", "--sampler-option", f"fixed={fixed}", "--seed", "3")
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 8 and set(trials["sampler"]) == {HUB}
    assert trials["arch"].str.startswith("|nor_conv_3x3~0|").all()  # the option reached the constructor
    assert trials["arch"].nunique() > 1
    manifest = json.loads((out / "manifest.json").read_text())
    package = manifest["sampler_package"]
    assert package["package"] == "samplers/fixed_random" and package["class"] == "FixedRandomSampler"
    assert package["registry"] == str(registry.resolve()) and package["seeded"] is True
    assert package["sha256"] == folder_digest(registry / "samplers" / "fixed_random")
    assert manifest["runs"][0]["sampler_package"] == package
    assert manifest["config"]["sampler_options"] == {"fixed": {"edge_0_1": "nor_conv_3x3"}}
    # Each trial's sampler is made with the trial's seed: the same seed proposes the same, another seed not.
    again = pd.read_csv(hub_run(tmp_path, registry, "b", "--sampler-option", f"fixed={fixed}", "--seed", "3") /
                        "trials.csv")  # fmt: skip
    other = pd.read_csv(hub_run(tmp_path, registry, "c", "--sampler-option", f"fixed={fixed}", "--seed", "4") /
                        "trials.csv")  # fmt: skip
    assert again["arch"].tolist() == trials["arch"].tolist()
    assert other["arch"].tolist() != trials["arch"].tolist()


def test_a_worker_joins_a_hub_samplers_study_with_its_sampler(tmp_path: Path, registry: Path) -> None:
    config = RunConfig(
        sampler=HUB, proxy="params", n_trials=4, cache=f"sqlite:///{tmp_path / 'c.db'}",
        sampler_options={"fixed": {"edge_2_3": "skip_connect"}}, hub_registry=str(registry.resolve()),
    ).resolved()  # fmt: skip
    journal = str(tmp_path / "journal.log")
    start_worker(config, storage=journal, out_dir=tmp_path / "run")  # creates the study, runs nothing
    worker = join_worker(config.study_name, storage=journal)
    assert worker.config.sampler_options == config.sampler_options and worker.config.hub_registry == str(registry)
    assert len(worker.run().trials) == 4
    archs = [trial_result(t)["arch"] for t in worker.study.trials]
    assert all(a.endswith("|skip_connect~2|") for a in archs)


def test_a_hub_sampler_in_a_sweep_and_its_report(tmp_path: Path, registry: Path, data_root: Path) -> None:
    sweep = tmp_path / "sweep"
    code, _, err = bench(
        "sweep", "--samplers", f"random,{HUB}", "--hub-registry", registry, "--proxies", "params", "--seeds", "0-1",
        "--n-trials", "6", "--objectives", "score", "--out", sweep, "--cache", f"sqlite:///{tmp_path / 's.db'}",
    )  # fmt: skip
    assert code == 0, err
    cells = pd.read_csv(sweep / "cells.csv")
    assert sorted(set(cells["sampler"])) == [HUB, "random"] and len(cells) == 4
    assert (sweep / "nb201-cifar10-params-hub-samplers-fixed_random-score-s0" / "journal.log").is_file()
    report = tmp_path / "report"
    code, _, err = bench("report", sweep, "--out", report, "--at", "3", "--no-plots", "--data-root", data_root)
    assert code == 0, err
    table = read_commented_csv(report / "search.csv")
    assert set(table["sampler"]) == {HUB, "random"}
    assert HUB in (report / "search.md").read_text()


def test_bench_samplers_lists_a_local_registry_and_explains_hub_names(registry: Path) -> None:
    code, out, err = bench("samplers", "--hub-registry", registry)
    assert code == 0, err
    assert HUB in out and "Uniform random choices" in out
    assert "hub:samplers/two:Seeded" in out and "hub:samplers/two:Unseeded" in out
    assert "hub:PACKAGE[@REF][:CLASS]" in out and "--sampler-option" in out and "SHA-256" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sampler", "hub:samplers/nothing"], "no OptunaHub package 'samplers/nothing' under"),
        (["--sampler", "hub:samplers/fixed_random:Other"], "Valid choices: FixedRandomSampler"),
        (["--sampler", "hub:fixed random"], "use hub:PACKAGE[@REF][:CLASS]"),
        (["--sampler", HUB, "--sampler-option", "colour=1"], "takes no option 'colour'. Valid choices: fixed"),
        (["--sampler", HUB, "--sampler-option", "fixed"], "is not KEY=VALUE"),
        (["--sampler", HUB, "--sampler-option", "seed=1"], "is set by the suite"),
        (["--sampler", "tpe", "--sampler-option", "n_startup_trials=3"], "applies to hub: samplers"),
        (["--sampler", HUB, "--max-params", "1e6"], "cannot honour constraints"),
    ],
)
def test_bad_hub_input_is_one_line(tmp_path: Path, registry: Path, args: list[str], message: str) -> None:
    hub_registry = [] if args[1] == "tpe" else ["--hub-registry", registry]
    code, _, err = bench("run", *args, *hub_registry, "--proxy", "params", "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_package_of_several_classes_names_one_and_an_unseeded_class_is_said(registry: Path) -> None:
    with pytest.raises(ValueError, match=r"exports 2 sampler classes \(Seeded, Unseeded\); name one"):
        HubSampler.load("hub:samplers/two", str(registry))
    unseeded = HubSampler.load("hub:samplers/two:Unseeded", str(registry))
    assert unseeded.provenance()["seeded"] is False and unseeded.options() == ()
    assert HubSampler.load("hub:samplers/two:Seeded", str(registry)).provenance()["seeded"] is True
    code, out, err = bench("run", "--sampler", "hub:samplers/two:Unseeded", "--hub-registry", registry, "--proxy",
                           "params", "--n-trials", "1", "--out", registry.parent / "r", "--no-progress",
                           "--cache", f"sqlite:///{registry.parent / 'c.db'}")  # fmt: skip
    assert code == 0 and "takes no seed" in out, err


def test_sampler_options_are_json_where_they_parse() -> None:
    options = parse_sampler_options(["n=5", "x=0.5", "name=abc", 'd={"a": [1, 2]}', "flag=true", "s=a=b"])
    assert options == {"n": 5, "x": 0.5, "name": "abc", "d": {"a": [1, 2]}, "flag": True, "s": "a=b"}


def test_an_unknown_sampler_names_the_hub_form_and_a_sweep_refuses_stray_hub_options(tmp_path: Path) -> None:
    code, _, err = bench("run", "--sampler", "nsga3", "--out", tmp_path / "r")
    assert code == 2 and "Valid choices: brute" in err and "or hub:PACKAGE" in err
    code, _, err = bench("sweep", "--samplers", "tpe", "--sampler-option", "n=1", "--out", tmp_path / "s")
    assert code == 2 and "--samplers names none" in err


def test_a_missing_registry_folder_is_named(tmp_path: Path) -> None:
    code, _, err = bench("run", "--sampler", HUB, "--hub-registry", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert code == 2 and "no such folder" in err
