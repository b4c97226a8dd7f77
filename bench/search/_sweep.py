"""Comparison grids: one study per (sampler, proxy, seed) cell, and one combined trials table.

Cells run one after another in one process by default (each study reproducible, scorers shared);
``jobs > 1`` runs cells in parallel processes, which changes nothing in any one study.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..files import write_csv, write_text
from ..scoring import Scorer
from ._config import RunConfig
from ._hub import is_hub
from ._outputs import best_row
from ._samplers import SAMPLERS, check_sampler_name, sampler_spec
from ._session import start_worker


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,7"`` or a mix (``"0-2,10"``) -> the seeds, in order, unique."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else [int(low)]
        except ValueError:
            raise ValueError(f"--seeds {text!r}: {part!r} is neither a seed nor a range like 0-9") from None
        if dash and int(high) < int(low):
            raise ValueError(f"--seeds {text!r}: the range {part!r} is empty")
        seeds.extend(s for s in values if s not in seeds)
    if not seeds:
        raise ValueError(f"--seeds {text!r} names no seed (e.g. 0-9 or 0,1,2)")
    return seeds


def parse_samplers(text: str) -> list[str]:
    """``"tpe,random,hub:samplers/auto_sampler"`` -> the names, checked (hub packages are loaded later)."""
    names = [check_sampler_name(n.strip()) for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no sampler given. Valid choices: {', '.join(SAMPLERS.names())}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Cell:
    config: RunConfig
    out_dir: Path


def grid(
    base: RunConfig, samplers: Sequence[str], proxies: Sequence[str], seeds: Sequence[int], out: Path
) -> list[Cell]:
    """Every cell of the grid, each config resolved (so a bad cell fails before any runs)."""
    if (base.sampler_options or base.hub_registry) and not any(is_hub(s) for s in samplers):
        raise ValueError("--sampler-option and --hub-registry apply to hub: samplers, and --samplers names none")
    cells = []
    for proxy in proxies:
        for sampler in samplers:
            for seed in seeds:
                spec = sampler_spec(sampler, registry=base.hub_registry)
                hub = is_hub(sampler)
                config = dataclasses.replace(
                    base, sampler=sampler, proxy=proxy, seed=seed, study_name="",
                    # A grid's --population and --sample-size apply to the samplers that have them, its
                    # --sampler-option and --hub-registry to the OptunaHub ones.
                    population_size=base.population_size if spec.population_size else None,
                    sample_size=base.sample_size if spec.sample_size else None,
                    sampler_options=base.sampler_options if hub else {},
                    hub_registry=base.hub_registry if hub else None,
                ).resolved()  # fmt: skip
                cells.append(Cell(config, out / config.study_name))
    return cells


def run_cell(
    cell: Cell,
    *,
    storage: str | None,
    device: str,
    data_root: str | None,
    scorers: dict[Any, Scorer] | None = None,
) -> dict[str, Any]:
    """Run one cell to its budget and write its run folder; a summary row of its result."""
    worker = start_worker(
        cell.config, storage=storage, out_dir=cell.out_dir, device=device, data_root=data_root, scorers=scorers
    )
    result = worker.run()
    frame, _ = worker.write(cell.out_dir, result)
    return cell_summary(cell.config, frame)


def _run_cell_in_process(config: dict[str, Any], out_dir: str, storage: str | None, device: str, data_root: str | None):
    cell = Cell(RunConfig.from_dict(config), Path(out_dir))
    return run_cell(cell, storage=storage, device=device, data_root=data_root)


def cell_summary(config: RunConfig, frame: pd.DataFrame) -> dict[str, Any]:
    """The arch a searcher would pick (the feasible one with the best proxy score) and its ground truth."""
    best = best_row(frame)
    summary: dict[str, Any] = {
        "study": config.study_name,
        "sampler": config.sampler,
        "proxy": config.proxy,
        "seed": config.seed,
        "trials": int(frame["state"].isin(["COMPLETE", "PRUNED"]).sum()),
    }
    for column in ("arch", "score", "val_acc", "test_acc", "params"):
        value = best.get(column) if best is not None else None
        summary[f"best_{column}"] = None if value is None or pd.isna(value) else value
    return summary


def run_sweep(
    cells: Sequence[Cell],
    *,
    out: Path,
    storage: str | None = None,
    jobs: int = 1,
    device: str = "auto",
    data_root: str | None = None,
    on_cell: Callable[[dict[str, Any]], None] | None = None,
    initializer: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every cell; write ``trials.csv`` (all cells), ``cells.csv`` and ``sweep.json`` under ``out``.

    ``initializer`` runs first in each worker process of ``jobs > 1`` (e.g. the command's logging setup)."""
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    out.mkdir(parents=True, exist_ok=True)
    write_text(
        out / "sweep.json",
        json.dumps({"cells": [c.config.to_dict() for c in cells], "storage": storage, "jobs": jobs}, indent=2) + "\n",
    )
    summaries: list[dict[str, Any]] = []
    if jobs == 1:
        scorers: dict[Any, Scorer] = {}
        for cell in cells:
            summaries.append(run_cell(cell, storage=storage, device=device, data_root=data_root, scorers=scorers))
            if on_cell is not None:
                on_cell(summaries[-1])
    else:
        # Spawned, not forked: each process starts its own torch and database connections cleanly.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer) as pool:
            futures = [
                pool.submit(_run_cell_in_process, c.config.to_dict(), str(c.out_dir), storage, device, data_root)
                for c in cells
            ]
            for future in as_completed(futures):
                summaries.append(future.result())
                if on_cell is not None:
                    on_cell(summaries[-1])
    order = {c.config.study_name: i for i, c in enumerate(cells)}
    summary = pd.DataFrame(summaries).sort_values("study", key=lambda s: s.map(order)).reset_index(drop=True)
    write_csv(summary, out / "cells.csv", index=False)
    trials = pd.concat([pd.read_csv(c.out_dir / "trials.csv") for c in cells], ignore_index=True)
    write_csv(trials, out / "trials.csv", index=False)
    return trials, summary


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (proxy, sampler): the mean and spread over seeds of the picked architecture's ground truth."""
    metrics = [c for c in ("best_test_acc", "best_val_acc") if c in summary and summary[c].notna().any()]
    grouped = summary.groupby(["proxy", "sampler"], sort=False)
    table = grouped.agg(seeds=("seed", "nunique"), **{
        f"{m}_{stat}": (m, stat) for m in metrics for stat in ("mean", "std")
    })  # fmt: skip
    return table.reset_index()
