"""``bench score``: score architectures with proxies (``bench correlate`` reads what it writes)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from proxies import INITS, get_proxy, parse_proxy_list, proxy_version
from spaces import SearchSpace, get_space

from ..devices import resolve_device
from ..files import atomic_open, check_writable_dir, ensure_writable_dir, write_text
from ..sampling import uniform_sample
from ..scoring import (
    CPU_ENGINE_NOTE,
    ENGINES,
    FAILED,
    NONFINITE,
    OK,
    ScoreCache,
    ScoreRecord,
    ScoringConfig,
    make_scorers,
    score_in_workers,
)
from ._app import DataRootOption, command, console, err_console
from ._options import ThreadsOption

SCORE_COLUMNS = ("index", "arch", "proxy", "score", "seconds", "status", "error")
OUTPUT_SUFFIXES = (".csv", ".parquet")


# --- bench score ------------------------------------------------------------------------------------


def one_per_class(space: SearchSpace, archs: list[Any]) -> list[Any]:
    """The first of ``archs`` (in index order) of each isomorphism class: cells that compute the same
    function are scored once."""
    seen: set[str | None] = set()
    kept = []
    for arch in sorted(archs, key=space.index):
        key = space.unique(arch)
        if key is None:
            raise ValueError(f"space {space.name!r} has no isomorphism classes; drop --unique")
        if key not in seen:
            seen.add(key)
            kept.append(arch)
    return kept


def _check_output(path: Path) -> None:
    if path.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {path} must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise ImportError(f"writing {path} needs pyarrow: pip install pyarrow (or write a .csv)") from err


def _row(record: ScoreRecord) -> dict[str, Any]:
    return {
        "index": record.index,
        "arch": record.arch,
        "proxy": record.proxy,
        "score": record.score,
        "seconds": record.seconds,
        "status": record.status,
        "error": record.error,
    }


@contextmanager
def _score_writer(path: Path) -> Iterator[Any]:
    """A function that takes rows, written under a temporary name beside ``path`` and moved onto it when
    scoring ends: a failed run leaves no table behind. A CSV is written (and flushed) as rows arrive, so
    the rows of an interrupted run are kept, as ``<path>.partial``; a Parquet file is written at the end."""
    folder = ensure_writable_dir(path.parent)
    if path.suffix != ".csv":
        collected: list[dict[str, Any]] = []
        yield collected.extend
        import pandas as pd

        with atomic_open(path, "wb") as fh:
            pd.DataFrame(collected, columns=list(SCORE_COLUMNS)).to_parquet(fh, index=False)
        return
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    written = 0
    try:
        with open(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SCORE_COLUMNS)
            writer.writeheader()

            def write(rows: Sequence[dict[str, Any]]) -> None:
                nonlocal written
                writer.writerows(rows)
                fh.flush()
                written += len(rows)

            yield write
        os.replace(tmp, path)
    except BaseException:
        if written:
            os.replace(tmp, f"{path}.partial")
            err_console.print(f"kept the {written} rows scored before stopping in {path}.partial", highlight=False)
        else:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


@command(name="score")
def score_command(
    proxy: Annotated[str, typer.Option("--proxy", "-p", help="Comma-separated proxy names or wildcards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.csv, or .parquet with pyarrow).")],
    space: Annotated[str, typer.Option(help="Search space.")] = "nb201",
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset of the proxy batch and the classifier head (default: the space's first)."),
    ] = None,
    sample: Annotated[
        int | None, typer.Option(help="Score a uniform sample of N architectures, drawn by --sample-seed.")
    ] = None,
    all_archs: Annotated[bool, typer.Option("--all", help="Score every architecture of the space.")] = False,
    arch: Annotated[
        list[str] | None, typer.Option("--arch", help="Score these architectures (index or string; repeatable).")
    ] = None,
    sample_seed: Annotated[
        int, typer.Option(help="Seed of the --sample draw: the same architectures whatever --seed is.")
    ] = 0,
    seed: Annotated[
        int, typer.Option(help="Scoring seed: the proxy batch and every network's initialisation (not which archs).")
    ] = 0,
    teacher: Annotated[
        str | None,
        typer.Option(help="Teacher of the teacher-aware proxies (default for nb201: resnet56; see `bench proxies`)."),
    ] = None,
    teacher_weights: Annotated[
        Path | None, typer.Option(help="Trained teacher state dict; the teacher is random without it.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Examples (images, or token sequences for a text space) in the proxy batch.")
    ] = 64,
    device: Annotated[str, typer.Option(help="auto (the GPU if any), cpu, cuda or cuda:N.")] = "cpu",
    precision: Annotated[
        str, typer.Option(help="fp32 (TF32 off, the default) or tf32 (CUDA only); part of each score's key.")
    ] = "fp32",
    init: Annotated[str, typer.Option(help="Initialisation: default (PyTorch's) or diswot (Gaussian).")] = "default",
    cache: Annotated[
        str | None, typer.Option(help="Score cache database URL, e.g. sqlite:///results/scores.db.")
    ] = None,
    unique: Annotated[
        bool,
        typer.Option(
            "--unique", help="Score one architecture per isomorphism class (the lowest index) of those chosen."
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="auto (the faster on the device: loop on a CPU, batched on a GPU); batched: many students per "
            "forward pass where a proxy allows (same scores); loop: one student at a time."
        ),
    ] = "auto",
    chunk_size: Annotated[
        int | None, typer.Option(help="Students per batched forward pass (default: 128 on a GPU, 8 on a CPU).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Worker processes sharing the work through the score cache (one per GPU, round robin)."),
    ] = 1,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Score architectures with proxies: one row per (architecture, proxy) with its time and status."""
    sp = get_space(space)
    dataset = dataset or next(iter(sp.num_classes))
    names = parse_proxy_list(proxy, getattr(sp, "input_kind", "image"))
    INITS.check(init)
    device = resolve_device(device)
    _check_output(out)
    check_writable_dir(out.parent)
    if teacher:
        from ..teachers import TEACHERS

        TEACHERS.check(teacher)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}. Valid choices: {', '.join(ENGINES)}")
    if engine == "batched" and device.split(":")[0] == "cpu":
        console.print(CPU_ENGINE_NOTE, highlight=False)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"--chunk-size must be positive, got {chunk_size}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and not cache:
        raise ValueError("--workers shares the work through the score cache: pass --cache URL too")
    if teacher_weights is not None:
        from ..files import load_torch

        load_torch(teacher_weights, "teacher weights")  # a missing or damaged file fails before any scoring
    chosen = [bool(sample), all_archs, bool(arch)]
    if sum(chosen) != 1:
        raise ValueError("choose the architectures with exactly one of --sample N, --all or --arch")
    if all_archs:
        archs = list(sp)
    elif sample:
        archs = [sp.arch_at(i) for i in uniform_sample(sp, sample, sample_seed)]
    else:
        archs = [sp.parse(a) for a in arch or []]
    if unique:
        archs = one_per_class(sp, archs)
    images = dataset
    if getattr(sp, "input_kind", "image") == "image":
        from ..data import images_for

        images = images_for(dataset, data_root)
        if any(get_proxy(n).needs_data for n in names):
            from ..data import require_dataset

            require_dataset(images, data_root)  # a missing or damaged dataset fails now, before any scoring
        if images != dataset:
            console.print(
                f"{dataset} images are not under the data root: the proxies score {images} images "
                f"under the {dataset} classifier head",
                highlight=False,
            )
    config = ScoringConfig(
        images=images,
        space=space,
        dataset=dataset,
        batch_size=batch_size,
        seed=seed,
        teacher_weights=str(teacher_weights) if teacher_weights else None,
        init=init,
        device=device,
        data_root=str(data_root) if data_root else None,
        precision=precision,
    )
    score_cache = ScoreCache(cache) if cache else None
    scorers = make_scorers(config, names, teacher=teacher, cache=score_cache, engine=engine, chunk_size=chunk_size)
    aware = [s for s in scorers if s.config.teacher]
    if aware:
        from ..teachers import describe_teacher

        name = aware[0].config.teacher
        from ..teachers import TEACHERS

        pretrained = getattr(TEACHERS.factory(name), "pretrained", False)
        weights = (
            f"trained weights {teacher_weights}"
            if teacher_weights
            else "pretrained"
            if pretrained
            else "random weights"
        )
        console.print(f"teacher: {name} ({weights}): {describe_teacher(name, dataset)}", highlight=False)

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    seconds: dict[str, float] = defaultdict(float)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    total = len(archs) * len(names)
    if workers > 1:
        assert cache is not None
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"scoring ({workers} workers)", total=total)
            score_in_workers(
                config,
                names,
                [sp.index(a) for a in archs],
                workers=workers,
                cache_url=cache,
                teacher=teacher,
                engine=engine,
                chunk_size=chunk_size,
                on_progress=lambda done: progress.update(task, completed=min(done, total)),
            )
    with _score_writer(out) as write, Progress(*columns, console=console) as progress:
        task = progress.add_task("scoring", total=total)

        def record(r: ScoreRecord) -> None:
            counts[r.proxy][r.status] += 1
            counts[r.proxy]["cached"] += r.cached
            seconds[r.proxy] += r.seconds
            progress.advance(task)

        # Blocks of architectures: rows reach the file as they are scored; each scorer's chunks run as one
        # stream across the blocks, so the engine fills whole chunks and builds the next while one runs.
        blocks = [archs[start : start + 256] for start in range(0, len(archs), 256)]
        streams = [scorer.score_blocks(blocks, on_record=record) for scorer in scorers]
        for _ in blocks:
            for stream in streams:
                write([_row(r) for r in next(stream)])
    _print_summary(names, counts, seconds)
    # What made these scores, beside them, for the provenance of the tables made from them (bench.analysis).
    made_by = (aware or scorers)[0].config.key_fields()
    made_by["teacher_proxies"] = [n for n in names if get_proxy(n).needs_teacher]
    made_by["proxy_versions"] = {n: proxy_version(n) for n in names}
    if sample:
        made_by.update(sample=sample, sample_seed=sample_seed)
    write_text(f"{out}.json", json.dumps(made_by, indent=2) + "\n")
    console.print(f"wrote {len(archs) * len(names)} rows to {out}")


def _print_summary(names: list[str], counts: dict[str, Counter[str]], seconds: dict[str, float]) -> None:
    table = Table("proxy", "ok", "failed", "non-finite", "from cache", "mean seconds")
    for name in names:
        c = counts[name]
        total = c[OK] + c[FAILED] + c[NONFINITE]
        mean = seconds[name] / max(total, 1)
        table.add_row(name, str(c[OK]), str(c[FAILED]), str(c[NONFINITE]), str(c["cached"]), f"{mean:.3f}")
    console.print(table)
