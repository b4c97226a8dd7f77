"""The distillation benchmark: many students trained vanilla and with KD, sharded over workers.

Work is (architecture, mode) pairs, mode being the vanilla recipe or the distillation recipe. Workers
share a SQL storage (SQLite on one machine, PostgreSQL across machines) through
:class:`bench.scoring.ScoreCache`: a worker claims up to ``group_size`` pending students of one mode,
trains them together (packed where the space allows), stores each final test accuracy and renews its
claims every half minute, so a dead worker's students are taken over and a live one's never are. Each group
checkpoints every epoch under the work folder, so a restarted worker that claims the same group resumes it. When no
work is left, the results are written as a ground-truth table (``bench correlate -g kd:PATH``) beside the
full recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spaces import get_space

from ..files import write_text
from ..scoring import ScoreCache
from ..scoring._records import FAILED, OK, ScoreRecord
from ._recipe import Recipe
from ._run import train_architectures

VANILLA = "vanilla"
KD = "kd"
MODES = (VANILLA, KD)
#: How often a training worker renews its claims; ``stale_after`` must be well above it.
HEARTBEAT_SECONDS = 30.0


@dataclass(frozen=True)
class KDBench:
    """One distillation benchmark: students of ``space``, a KD recipe (its vanilla twin is derived)."""

    space: str
    archs: tuple[str, ...]
    recipe: Recipe
    storage: str
    workdir: Path
    group_size: int = 8

    def __post_init__(self) -> None:
        if not self.recipe.distils:
            raise ValueError("kd-bench compares vanilla with distilled training: give a kd* loss and a teacher")
        if self.group_size < 1:
            raise ValueError(f"group_size must be positive, got {self.group_size}")
        space = get_space(self.space)
        canonical = tuple(space.to_str(space.parse(a)) for a in self.archs)
        if len(set(canonical)) != len(canonical):
            raise ValueError("kd-bench got the same architecture twice")
        object.__setattr__(self, "archs", canonical)

    def recipe_of(self, mode: str) -> Recipe:
        return self.recipe if mode == KD else self.recipe.vanilla()

    def config(self, mode: str) -> str:
        """The storage key of a mode's results: its recipe hash, prefixed so it never meets a proxy config."""
        return f"t{self.recipe_of(mode).hash()[:15]}"

    def proxy(self, mode: str) -> str:
        return f"train:{self.recipe_of(mode).loss}"


def _group_checkpoint(bench: KDBench, mode: str, archs: Sequence[str]) -> Path:
    digest = hashlib.sha1("|".join(archs).encode()).hexdigest()[:16]
    return bench.workdir / "checkpoints" / bench.config(mode) / f"{digest}.pt"


def _log(bench: KDBench, entry: dict[str, object]) -> None:
    bench.workdir.mkdir(parents=True, exist_ok=True)
    with open(bench.workdir / "trained.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")


class _Heartbeat:
    """Renews a worker's claims while it trains (at most every ``HEARTBEAT_SECONDS``), and reports progress."""

    def __init__(self, cache: ScoreCache, config: str, pairs: list[tuple[str, str]], progress=None) -> None:
        self.cache, self.config, self.pairs, self.progress = cache, config, pairs, progress
        self.last = time.monotonic()

    def beat(self, step: int, total: int, stats: dict[str, float]) -> None:
        if time.monotonic() - self.last > HEARTBEAT_SECONDS:
            self.cache.touch(self.config, self.pairs)
            self.last = time.monotonic()
        if self.progress is not None:
            self.progress(step, total, stats)


def _claim_group(cache: ScoreCache, bench: KDBench) -> tuple[str, list[str]] | None:
    """Claim up to ``group_size`` pending students of the first mode with pending work; None if nothing
    is claimable now."""
    for mode in MODES:
        config, proxy = bench.config(mode), bench.proxy(mode)
        done = cache.get_many(config, bench.archs, [proxy])
        pending = [a for a in bench.archs if (a, proxy) not in done]
        won: list[str] = []
        position = 0
        while position < len(pending) and len(won) < bench.group_size:
            chunk = pending[position : position + bench.group_size - len(won)]
            position += len(chunk)
            got = cache.claim_many(config, [(a, proxy, None) for a in chunk])
            won += [a for a in chunk if (a, proxy) in got]
        # Claims whose worker died or went silent are taken over one by one.
        for arch in pending:
            if len(won) == bench.group_size:
                break
            if arch not in won and cache.claim(config, arch, proxy):
                won.append(arch)
        if won:
            return mode, [a for a in bench.archs if a in won]
    return None


def remaining(cache: ScoreCache, bench: KDBench) -> int:
    """(architecture, mode) pairs without a finished result."""
    return sum(len(bench.archs) - len(cache.get_many(bench.config(m), bench.archs, [bench.proxy(m)])) for m in MODES)


def run_worker(
    bench: KDBench,
    *,
    device: str = "cpu",
    data_root: str | os.PathLike | None = None,
    amp: bool = False,
    channels_last: bool = False,
    max_groups: int | None = None,
    poll: float = 2.0,
    stale_after: float = 900.0,
    on_group: Callable[[str, list[str]], None] | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> int:
    """Train groups until no work is left (or ``max_groups``); returns the number of groups trained here.

    A worker waits for others' running groups before it returns, so that the table it then writes is
    complete; a failed training is stored as failed, with its error, and the worker goes on.
    """
    cache = ScoreCache(bench.storage, stale_after=stale_after)
    trained = 0
    while max_groups is None or trained < max_groups:
        claim = _claim_group(cache, bench)
        if claim is None:
            if remaining(cache, bench) == 0:
                break
            time.sleep(poll)  # others hold the rest; their claims go stale if they die
            continue
        mode, archs = claim
        if on_group is not None:
            on_group(mode, archs)
        config, proxy = bench.config(mode), bench.proxy(mode)

        heartbeat = _Heartbeat(cache, config, [(a, proxy) for a in archs], progress)
        tic = time.perf_counter()
        try:
            _, result = train_architectures(
                bench.space,
                archs,
                bench.recipe_of(mode),
                device=device,
                data_root=data_root,
                checkpoint=_group_checkpoint(bench, mode, archs),
                amp=amp,
                channels_last=channels_last,
                progress=heartbeat.beat,
            )
            seconds = (time.perf_counter() - tic) / len(archs)
            failures = result.failures()
            records = [
                ScoreRecord(arch=a, proxy=proxy, score=acc, seconds=seconds, status=OK, config=config)
                if i not in failures
                else ScoreRecord(
                    arch=a, proxy=proxy, score=None, seconds=seconds, status=FAILED, error=failures[i], config=config
                )
                for i, (a, acc) in enumerate(zip(archs, result.test_acc))
            ]
        except KeyboardInterrupt:
            for arch in archs:
                cache.release(config, arch, proxy)
            raise
        except Exception as err:  # a failed group is recorded, and the benchmark goes on
            seconds = time.perf_counter() - tic
            error = f"{type(err).__name__}: {err}"
            records = [
                ScoreRecord(arch=a, proxy=proxy, score=None, seconds=seconds, status=FAILED, error=error, config=config)
                for a in archs
            ]
            _log(bench, {"mode": mode, "archs": archs, "owner": cache.owner, "error": traceback.format_exc()})
        cache.put_many(records)
        _log(
            bench,
            {"mode": mode, "archs": archs, "owner": cache.owner, "status": records[0].status, "seconds": seconds},
        )
        trained += 1
    return trained


def results_table(bench: KDBench) -> pd.DataFrame:
    """One row per student: vanilla and KD test accuracy (%), the gain, cost and the recipes' hashes."""
    cache = ScoreCache(bench.storage)
    space = get_space(bench.space)

    found = {m: cache.get_many(bench.config(m), bench.archs, [bench.proxy(m)]) for m in MODES}
    rows = []
    for arch in bench.archs:
        accs = {}
        for mode in MODES:
            record = found[mode].get((arch, bench.proxy(mode)))
            accs[mode] = record.score if record is not None and record.ok else float("nan")
        cost = space.cost_on(space.parse(arch), bench.recipe.dataset)
        rows.append(
            {
                "arch": arch,
                "dataset": bench.recipe.dataset,
                "vanilla_acc": accs[VANILLA],
                "kd_acc": accs[KD],
                "gain": accs[KD] - accs[VANILLA],
                "params": cost.params,
                "flops": cost.flops,
                "recipe": bench.recipe.hash(),
                "vanilla_recipe": bench.recipe.vanilla().hash(),
            }
        )
    return pd.DataFrame(rows)


def write_table(bench: KDBench, path: str | os.PathLike) -> Path:
    """Write the results table (CSV) and, beside it, ``<name>.recipe.json`` with everything that made it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = results_table(bench)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    table.to_csv(tmp, index=False, float_format="%.4f")
    os.replace(tmp, path)
    meta = {
        "space": bench.space,
        "recipe": bench.recipe.as_dict(),
        "recipe_hash": bench.recipe.hash(),
        "vanilla_recipe": bench.recipe.vanilla().as_dict(),
        "vanilla_recipe_hash": bench.recipe.vanilla().hash(),
        "students": len(bench.archs),
        "group_size": bench.group_size,
    }
    recipe_path = path.with_name(path.stem + ".recipe.json")
    write_text(recipe_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path
