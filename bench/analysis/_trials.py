"""Trials tables of search runs and sweeps, as the analysis reads them.

A run folder (``bench run``) holds ``manifest.json`` and ``trials.csv``; a sweep folder (``bench sweep``)
holds one run folder per cell and a combined ``trials.csv``. The columns used here are
``space, dataset, sampler, proxy, seed, number, state, arch, score``, ``feasible`` where a cost limit was
set and, for multi-objective runs, ``value_0, value_1``: the search's own objectives (the proxy score first).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ._scores import frame_digest, read_commented_csv

TRIALS_FILE = "trials.csv"
MANIFEST_FILE = "manifest.json"
REQUIRED_COLUMNS = ("space", "dataset", "sampler", "proxy", "seed", "number", "state", "arch", "score")
#: One search run: a study of one sampler with one proxy and one seed on one space and dataset.
RUN_KEYS = ["space", "dataset", "sampler", "proxy", "seed"]
#: A method compared in the tables: one sampler driven by one proxy.
METHOD_KEYS = ["sampler", "proxy"]
#: Trial states that spent an evaluation: a pruned trial is one whose score failed; a failed trial is one
#: whose worker stopped, and the search retried it as a new trial (a running or waiting one never finished).
EVALUATED_STATES = ("COMPLETE", "PRUNED")


@dataclass
class Trials:
    """The trials of one or more runs, with the files they came from and the runs' manifests."""

    frame: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    manifests: list[dict] = field(default_factory=list)

    def digest(self) -> str:
        """A digest of the trials' columns the analysis reads (not of their dates and timings)."""
        values = sorted(c for c in self.frame.columns if c.startswith("value_"))
        return frame_digest(self.frame, [*REQUIRED_COLUMNS, *values, "feasible"])


def _trial_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a trials file nor a run or sweep folder")
    if (path / TRIALS_FILE).is_file():
        # A sweep's combined table already holds its runs: reading both would count every trial twice.
        return [path / TRIALS_FILE]
    found = sorted(path.glob(f"*/{TRIALS_FILE}"))
    if not found:
        raise FileNotFoundError(f"{path} has no {TRIALS_FILE}, nor any run folder with one")
    return found


def _manifests(path: Path) -> list[dict]:
    folder = path if path.is_dir() else path.parent
    files = sorted([*folder.glob(MANIFEST_FILE), *folder.glob(f"*/{MANIFEST_FILE}")])
    return [json.loads(f.read_text()) for f in files]


def load_trials(paths: Sequence[str | Path]) -> Trials:
    """Read the trials of run folders, sweep folders or trials CSV files into one table."""
    if not paths:
        raise ValueError("no run or sweep folder given")
    files: list[Path] = []
    manifests: list[dict] = []
    for p in map(Path, paths):
        files.extend(_trial_files(p))
        manifests.extend(_manifests(p))
    frames = []
    for f in files:
        frame = read_commented_csv(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"trials file {f} lacks the column(s) {', '.join(missing)}")
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame["seed"] = frame["seed"].astype(int)
    # Trials outside a cost limit are complete but not eligible; tables without the column have no limits.
    feasible = frame["feasible"] if "feasible" in frame.columns else pd.Series(True, index=frame.index)
    frame["feasible"] = feasible.map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() != "false")
    frame["number"] = frame["number"].astype(int)
    duplicated = frame.duplicated([*RUN_KEYS, "number"])
    if duplicated.any():
        first = frame.loc[duplicated, [*RUN_KEYS, "number"]].iloc[0].to_dict()
        raise ValueError(f"trial {first} appears twice: pass a sweep folder or its run folders, not both")
    return Trials(frame=frame, files=files, manifests=manifests)
