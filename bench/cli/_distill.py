"""``bench train-teacher``, ``bench train``, ``bench distill``, ``bench kd-bench`` and ``bench distill-report``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from spaces import get_space

from ..analysis import Provenance, check_formats, command_line, load_score_runs
from ..data import check_dataset, require_dataset
from ..devices import resolve_device
from ..distill import LOSSES, Recipe
from ..distill._kdbench import KDBench, remaining, run_worker, write_table
from ..distill._run import teacher_checkpoint_info, train_architectures, train_teacher
from ..distill._table import candidates, distillation_table, left_out, selections, summarise
from ..files import atomic_open, check_writable_dir, write_csv, write_text
from ..ground_truth import load_ground_truth
from ..sampling import uniform_sample
from ..scoring import ScoreCache
from ..teachers import TEACHERS
from ._app import DataRootOption, command, console
from ._options import ThreadsOption
from ._report import default_ground_truth

SpaceOption = Annotated[str, typer.Option(help="Search space of the students.")]
DatasetOption = Annotated[str, typer.Option(help="cifar10, cifar100 or ImageNet16-120.")]
EpochsOption = Annotated[int, typer.Option(help="Training epochs.")]
BatchOption = Annotated[int, typer.Option("--batch-size", help="Training batch size.")]
LrOption = Annotated[float, typer.Option(help="Peak learning rate (cosine schedule to 0).")]
WdOption = Annotated[float, typer.Option("--weight-decay", help="SGD weight decay.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the initialisation, data order and augmentation.")]
TrainImagesOption = Annotated[int, typer.Option(help="Train on a seeded subset of N images (0: all).")]
TestImagesOption = Annotated[int, typer.Option(help="Evaluate on a fixed subset of N test images (0: all).")]
AugmentOption = Annotated[bool, typer.Option("--augment/--no-augment", help="Random crop and flip.")]
DeviceOption = Annotated[str, typer.Option(help="auto (the GPU if any), cpu, cuda or cuda:N.")]
AmpOption = Annotated[bool, typer.Option("--amp/--no-amp", help="bfloat16 autocast on CUDA.")]
ChannelsLastOption = Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="NHWC memory layout.")]
PackOption = Annotated[
    bool | None,
    typer.Option("--pack/--no-pack", help="Train students packed into one module (default: on CUDA only)."),
]
LossOption = Annotated[str, typer.Option(help=f"Distillation loss: {', '.join(LOSSES[1:])}.")]
TemperatureOption = Annotated[float, typer.Option(help="KD temperature.")]
AlphaOption = Annotated[float, typer.Option(help="Weight of KD against cross-entropy (alpha KD + (1-alpha) CE).")]
BetaOption = Annotated[float, typer.Option(help="Weight of the feature term of kd+diswot, kd+sp, kd+ickd.")]
TeacherOption = Annotated[Path, typer.Option("--teacher", help="Teacher file written by bench train-teacher.")]


def _recipe(dataset: str, **fields) -> Recipe:
    check_dataset(dataset)
    return Recipe(dataset=dataset, **fields)


def _teacher_fields(teacher: Path, dataset: str, space: str | None = None) -> dict[str, object]:
    info = teacher_checkpoint_info(teacher)
    if info.get("dataset") != dataset:
        raise ValueError(f"teacher {teacher} was trained on {info.get('dataset')}, not on {dataset}")
    return {"teacher": str(info["teacher"]), "teacher_weights": str(teacher)}


@contextmanager
def _progress(description: str) -> Iterator:
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=None, stats="")

        def update(step: int, total: int, stats: dict[str, float]) -> None:
            text = f"epoch {int(stats['epoch'])} loss {stats['loss']:.3f} train acc {stats['acc']:.1f}%"
            progress.update(task, completed=step, total=total, stats=text)

        yield update


class TrainingFailed(ValueError):
    """A training run finished without a result for some networks (e.g. the loss diverged)."""


def _print_result(archs: list[str], accs: list[float], title: str) -> None:
    table = RichTable("student", "test acc (%)", title=title)
    for arch, acc in zip(archs, accs):
        table.add_row(arch, "failed" if math.isnan(acc) else f"{acc:.2f}")
    console.print(table)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


@command(name="train-teacher")
def train_teacher_command(
    model: Annotated[str, typer.Option(help="Teacher: resnet20, resnet56, resnet110, nb201-best.")] = "resnet56",
    dataset: DatasetOption = "cifar10",
    space: Annotated[str, typer.Option(help="Space whose teacher family to use (nb201-best).")] = "nb201",
    epochs: EpochsOption = 240,
    batch_size: BatchOption = 64,
    lr: LrOption = 0.05,
    weight_decay: WdOption = 5e-4,
    seed: SeedOption = 0,
    train_images: TrainImagesOption = 0,
    test_images: TestImagesOption = 0,
    augment: AugmentOption = True,
    out: Annotated[Path | None, typer.Option(help="Teacher file (default results/teachers/MODEL-DATASET.pt).")] = None,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    channels_last: ChannelsLastOption = False,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train a teacher (RepDistiller's CIFAR recipe by default: 240 epochs, batch 64, lr 0.05) and write the
    file that bench distill --teacher and bench kd-bench --teacher read."""
    TEACHERS.factory(model)
    device = resolve_device(device)
    recipe = _recipe(
        dataset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
        train_images=train_images, test_images=test_images, augment=augment,
    )  # fmt: skip
    out = out or Path("results") / "teachers" / f"{model}-{dataset}.pt"
    check_writable_dir(out.parent, "teacher's folder")
    with _progress(f"{model} on {dataset}") as update:
        result = train_teacher(
            model, recipe, out, space=space, device=device, data_root=data_root,
            checkpoint=out.with_suffix(".ckpt"), amp=amp, channels_last=channels_last, progress=update,
        )  # fmt: skip
    _print_result([model], result.test_acc, f"teacher (recipe {recipe.hash()})")
    console.print(f"wrote {out}")


def _train_students(
    *,
    space: str,
    arch: list[str],
    recipe: Recipe,
    out: Path | None,
    device: str,
    amp: bool,
    channels_last: bool,
    pack: bool | None,
    data_root: Path | None,
    title: str,
) -> None:
    device = resolve_device(device)
    if not arch:
        raise ValueError("name at least one student with --arch")
    sp = get_space(space)
    archs = [sp.to_str(sp.parse(a)) for a in arch]
    out = out or Path("results") / "train" / f"{recipe.hash()}-{_safe(archs[0]) if len(archs) == 1 else len(archs)}"
    check_writable_dir(out)
    require_dataset(recipe.dataset, data_root)  # a missing or damaged dataset fails before the folder is made
    out.mkdir(parents=True, exist_ok=True)
    with _progress(title) as update:
        students, result = train_architectures(
            space, archs, recipe, device=device, data_root=data_root, checkpoint=out / "checkpoint.pt",
            pack=pack, amp=amp, channels_last=channels_last, progress=update,
        )  # fmt: skip
    failures = result.failures()
    for i, (name, net) in enumerate(zip(archs, students)):
        if i not in failures:
            with atomic_open(out / f"student{i}.pt", "wb") as fh:
                torch.save({"state_dict": net.state_dict(), "space": space, "arch": name}, fh)
    record = {
        "space": space,
        "archs": archs,
        "test_acc": [None if i in failures else acc for i, acc in enumerate(result.test_acc)],
        "failed": {archs[i]: reason for i, reason in failures.items()},
        "recipe": recipe.as_dict(),
        "recipe_hash": recipe.hash(),
        "history": [vars(h) for h in result.history],
        "command": command_line(),
    }
    write_text(out / "result.json", json.dumps(record, indent=2) + "\n")
    _print_result(archs, result.test_acc, f"{title} (recipe {recipe.hash()})")
    console.print(f"wrote {out}")
    if failures:
        first = next(iter(failures.values()))
        raise TrainingFailed(
            f"{len(failures)} of {len(archs)} student(s) failed ({first}); result.json records them as failed: "
            "lower --lr or check the recipe"
        )


@command(name="train")
def train_command(
    arch: Annotated[list[str], typer.Option(help="Student architecture (repeat to train several together).")],
    space: SpaceOption = "nb201",
    dataset: DatasetOption = "cifar10",
    epochs: EpochsOption = 200,
    batch_size: BatchOption = 256,
    lr: LrOption = 0.1,
    weight_decay: WdOption = 5e-4,
    seed: SeedOption = 0,
    train_images: TrainImagesOption = 0,
    test_images: TestImagesOption = 0,
    augment: AugmentOption = True,
    out: Annotated[Path | None, typer.Option(help="Output folder (result.json, student weights, checkpoint).")] = None,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    channels_last: ChannelsLastOption = False,
    pack: PackOption = None,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train students vanilla (cross-entropy only), NAS-Bench-201's recipe by default; resumes from --out."""
    recipe = _recipe(
        dataset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
        train_images=train_images, test_images=test_images, augment=augment,
    )  # fmt: skip
    _train_students(
        space=space, arch=arch, recipe=recipe, out=out, device=device, amp=amp, channels_last=channels_last,
        pack=pack, data_root=data_root, title="vanilla",
    )  # fmt: skip


@command(name="distill")
def distill_command(
    arch: Annotated[list[str], typer.Option(help="Student architecture (repeat to train several together).")],
    teacher: TeacherOption,
    space: SpaceOption = "nb201",
    dataset: DatasetOption = "cifar10",
    loss: LossOption = "kd",
    temperature: TemperatureOption = 4.0,
    alpha: AlphaOption = 0.9,
    beta: BetaOption = 1.0,
    epochs: EpochsOption = 200,
    batch_size: BatchOption = 256,
    lr: LrOption = 0.1,
    weight_decay: WdOption = 5e-4,
    seed: SeedOption = 0,
    train_images: TrainImagesOption = 0,
    test_images: TestImagesOption = 0,
    augment: AugmentOption = True,
    out: Annotated[Path | None, typer.Option(help="Output folder (result.json, student weights, checkpoint).")] = None,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    channels_last: ChannelsLastOption = False,
    pack: PackOption = None,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train students distilled from a trained teacher: KD, or KD plus DisWOT's, SP's or ICKD's feature term."""
    if loss == "ce":
        raise ValueError(f"bench distill trains with a teacher; choose --loss from {', '.join(LOSSES[1:])}")
    recipe = _recipe(
        dataset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
        train_images=train_images, test_images=test_images, augment=augment, loss=loss,
        temperature=temperature, alpha=alpha, beta=beta, **_teacher_fields(teacher, dataset),
    )  # fmt: skip
    _train_students(
        space=space, arch=arch, recipe=recipe, out=out, device=device, amp=amp, channels_last=channels_last,
        pack=pack, data_root=data_root, title=loss,
    )  # fmt: skip


@command(name="kd-bench")
def kd_bench_command(
    teacher: TeacherOption,
    space: SpaceOption = "nb201",
    dataset: DatasetOption = "cifar10",
    sample: Annotated[
        int | None, typer.Option(help="Train a uniform sample of N students, the ones `bench score --sample N` draws.")
    ] = None,
    sample_seed: Annotated[int, typer.Option(help="Seed of the --sample draw (as bench score's).")] = 0,
    arch: Annotated[
        list[str] | None, typer.Option(help="A student to train (repeatable), instead of --sample.")
    ] = None,
    loss: LossOption = "kd",
    temperature: TemperatureOption = 4.0,
    alpha: AlphaOption = 0.9,
    beta: BetaOption = 1.0,
    epochs: EpochsOption = 200,
    batch_size: BatchOption = 256,
    lr: LrOption = 0.1,
    weight_decay: WdOption = 5e-4,
    seed: SeedOption = 0,
    train_images: TrainImagesOption = 0,
    test_images: TestImagesOption = 0,
    augment: AugmentOption = True,
    group_size: Annotated[int, typer.Option(help="Students trained together by one worker.")] = 16,
    storage: Annotated[
        str | None, typer.Option(help="SQL URL shared by the workers (default: SQLite in --workdir).")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Checkpoints and log (default results/kd-bench/RECIPE).")] = None,
    out: Annotated[Path | None, typer.Option(help="Ground-truth table (default WORKDIR/kd.csv).")] = None,
    max_groups: Annotated[int | None, typer.Option(help="Stop after training this many groups.")] = None,
    stale_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat before a claim is taken over.")
    ] = 900.0,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    channels_last: ChannelsLastOption = False,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train students vanilla and distilled, sharded over every worker that runs this same command (one per
    GPU), resumable; writes a ground-truth table for bench correlate -g kd:PATH."""
    device = resolve_device(device)
    if loss == "ce":
        raise ValueError(
            f"kd-bench compares vanilla with distilled training; choose --loss from {', '.join(LOSSES[1:])}"
        )
    sp = get_space(space)
    if bool(sample) == bool(arch):
        raise ValueError("choose the students with exactly one of --sample N or --arch")
    archs = [sp.to_str(sp.arch_at(i)) for i in uniform_sample(sp, sample, sample_seed)] if sample else list(arch or [])
    recipe = _recipe(
        dataset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
        train_images=train_images, test_images=test_images, augment=augment, loss=loss,
        temperature=temperature, alpha=alpha, beta=beta, **_teacher_fields(teacher, dataset),
    )  # fmt: skip
    workdir = workdir or Path("results") / "kd-bench" / recipe.hash()
    storage = storage or f"sqlite:///{workdir / 'storage.db'}"
    bench = KDBench(space=space, archs=tuple(archs), recipe=recipe, storage=storage, workdir=workdir,
                    group_size=group_size)  # fmt: skip
    console.print(f"kd-bench: {len(archs)} students x (vanilla, {loss}), recipe {recipe.hash()}, storage {storage}")
    with _progress("group") as update:

        def announce(mode: str, group: list[str]) -> None:
            console.print(f"training {len(group)} student(s) {mode}")

        trained = run_worker(
            bench, device=device, data_root=data_root, amp=amp, channels_last=channels_last,
            max_groups=max_groups, stale_after=stale_after, on_group=announce, progress=update,
        )  # fmt: skip
    left = remaining(ScoreCache(storage), bench)
    console.print(f"trained {trained} group(s) here; {left} (student, mode) pair(s) left")
    if left == 0:
        path = write_table(bench, out or workdir / "kd.csv")
        console.print(f"wrote {path} (bench correlate -g kd:{path})")


@command(name="distill-report")
def distill_report_command(
    scores: Annotated[list[Path], typer.Argument(help="Score files of bench score, one per seed.")],
    ground_truth: Annotated[str, typer.Option("--ground-truth", "-g", help="The kd-bench table: kd:PATH.")],
    space: SpaceOption = "nb201",
    dataset: DatasetOption = "cifar10",
    benchmark: Annotated[
        str | None, typer.Option(help="Ground truth whose vanilla accuracy picks the 'best vanilla' student.")
    ] = None,
    max_params: Annotated[float | None, typer.Option(help="Parameter budget of the students.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the tables.")] = Path("results/distillation"),
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: latex, md, csv.")] = "latex,md,csv",
    data_root: DataRootOption = None,
) -> None:
    """The distillation result table: the student each proxy picks under a budget, its params, FLOPs,
    vanilla and KD accuracy and gain, against the best benchmark-vanilla student and a random one."""
    if not ground_truth.startswith("kd:"):
        raise ValueError(f"--ground-truth must be a kd-bench table (kd:PATH), got {ground_truth!r}")
    check_writable_dir(out)
    kd = load_ground_truth(ground_truth, space=space, data_root=data_root)
    sp = get_space(space)
    check_dataset(dataset)
    archs = list(kd.table(dataset).index)
    costs = pd.DataFrame(
        [vars(sp.cost_on(sp.parse(a), dataset)) for a in archs], index=archs, columns=["params", "flops"]
    )
    pool = candidates(kd, dataset, max_params=max_params, costs=costs)
    if pool.empty:
        raise ValueError(
            f"no student of {ground_truth} has both accuracies on {dataset}"
            + (f" within --max-params {max_params:g}" if max_params is not None else "")
        )
    bench_spec = benchmark or default_ground_truth(space, data_root)
    bench_truth = load_ground_truth(bench_spec, space=space, data_root=data_root)
    runs = load_score_runs(scores, defaults={"space": space, "dataset": dataset})
    picks = selections(runs, pool, space=space, benchmark=bench_truth.accuracy(dataset))
    dropped = left_out(runs, pool, space=space)
    # NAS-Bench-201 names its students by index: an arch string is too wide for a table cell.
    try:
        picks["student"] = [str(sp.index(sp.parse(a))) for a in picks["arch"]]
    except TypeError:
        picks["student"] = picks["arch"]
    summary = summarise(picks)
    provenance = Provenance.capture(
        {"scores": [str(p) for p in scores], "ground_truth": kd.name, "benchmark": bench_truth.name,
         "dataset": dataset, "max_params": max_params, "candidates": len(pool)}
    )  # fmt: skip
    table = distillation_table(summary, provenance=provenance, dataset=dataset, budget=max_params, source=kd.name)
    written = table.write(out, check_formats(formats.split(",")))
    write_csv(picks, out / "distillation_picks.csv", index=False)
    console.print(table.to_markdown())
    students = len(archs)
    console.print(f"candidates: {len(pool)} of the {students} students of the table", highlight=False)
    for line in dropped:
        console.print(f"left out: {line}", highlight=False)
    for path in written:
        console.print(f"wrote {path}")
