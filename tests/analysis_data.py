"""Real inputs for the analysis tests: scores from the real scorer, trials from Optuna's real samplers."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from bench.scoring import Scorer, ScoringConfig

SCORE_COLUMNS = ["index", "arch", "proxy", "score", "seconds", "status", "error"]
N_ARCHS = 40


def sample_indices(nb201, n: int = N_ARCHS, sample_seed: int = 0) -> list[int]:
    """A seeded uniform sample of NB201's indices: the sample seed chooses the architectures."""
    return sorted(np.random.default_rng(100 + sample_seed).choice(len(nb201), size=n, replace=False).tolist())


def score_file(path, nb201, *, seed: int, proxies=("params", "l2_norm"), n: int = N_ARCHS, sample_seed: int = 0):
    """Real scores of a seeded uniform sample of NB201, written in the ``bench score`` layout: the sample seed
    chooses the architectures, the seed the batch and initialisation, as ``bench score`` does."""
    indices = sample_indices(nb201, n, sample_seed)
    config = ScoringConfig(seed=seed)
    scorer = Scorer(config, list(proxies))
    records = scorer.score_many([nb201.arch_at(i) for i in indices])
    frame = pd.DataFrame([r.as_row() for r in records])[SCORE_COLUMNS]
    frame.to_csv(path, index=False)
    # What made the scores, beside them, as bench score writes it.
    Path(f"{path}.json").write_text(json.dumps({**config.key_fields(), "sample_seed": sample_seed}))
    return path


N_TRIALS = 40
SEEDS = (0, 1, 2)


def sampler_for(name: str, seed: int) -> optuna.samplers.BaseSampler:
    return {
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=10),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=10),
    }[name]()


def run_trials(nb201, sampler: str, proxy: str, seed: int, *, multi: bool = False) -> pd.DataFrame:
    """One study in the trials-table layout. The "proxy" is a real cost of the cell (parameters or FLOPs
    of the CIFAR-10 network); a cell whose input does not reach its output is pruned, as a failed score is."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize", "minimize"] if multi else ["maximize"], sampler=sampler_for(sampler, seed)
    )
    distributions = nb201.distributions()

    def objective(trial: optuna.Trial):
        arch = nb201.from_params({n: trial.suggest_categorical(n, d.choices) for n, d in distributions.items()})
        cost = nb201.cost(arch, 10)
        trial.set_user_attr("arch", nb201.to_str(arch))
        if not nb201.is_connected(arch):
            raise optuna.TrialPruned("score nonfinite: the cell outputs a constant")
        score = float(getattr(cost, proxy))
        trial.set_user_attr("score", score)
        return (score, float(cost.params)) if multi else score

    study.optimize(objective, n_trials=N_TRIALS)
    rows = []
    for t in study.trials:
        row = {
            "study": f"{sampler}-{proxy}-s{seed}",
            "space": "nb201",
            "dataset": "cifar10",
            "sampler": sampler,
            "proxy": proxy,
            "seed": seed,
            "number": t.number,
            "state": t.state.name,
            "arch": t.user_attrs["arch"],
            "score": t.user_attrs.get("score"),
        }
        for i in range(len(study.directions)):
            row[f"value_{i}"] = t.values[i] if t.values is not None else None
        rows.append(row)
    return pd.DataFrame(rows)


@functools.cache
def real_score_files() -> tuple[Path, ...]:
    """Two score files (seeds 0 and 1) of the real scorer, made once per test process."""
    from spaces import get_space

    folder = Path(tempfile.mkdtemp(prefix="bench-analysis-scores-"))
    nb201 = get_space("nb201")
    return tuple(score_file(folder / f"scores_s{s}.csv", nb201, seed=s) for s in (0, 1))


@functools.cache
def real_trials() -> pd.DataFrame:
    """Single-objective studies of three samplers and a multi-objective NSGA-II study, three seeds each."""
    from spaces import get_space

    nb201 = get_space("nb201")
    frames = [run_trials(nb201, s, "flops", seed) for s in ("random", "tpe", "nsga2") for seed in SEEDS]
    frames += [run_trials(nb201, "nsga2", "params", seed, multi=True) for seed in SEEDS]
    return pd.concat(frames, ignore_index=True)
