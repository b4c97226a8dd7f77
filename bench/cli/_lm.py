"""``bench superlm``: train AutoDistil's SuperLMs, build the ground truth of distilled students, and compare
selected students with the teacher and a truncated teacher on GLUE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ._app import DataRootOption, app, command, console, err_console
from ._options import ThreadsOption

if TYPE_CHECKING:
    from spaces.autodistil import StudentArch

    from ..lm import FinetuneSettings, Protocol

superlm_app = typer.Typer(
    help="AutoDistil: SuperLM training, the distilled-student ground truth and GLUE comparisons.",
    no_args_is_help=True,
)
app.add_typer(superlm_app, name="superlm")


@superlm_app.callback()
def _needs_text_extra() -> None:
    """AutoDistil: SuperLM training, the distilled-student ground truth and GLUE comparisons."""
    from spaces.autodistil import require_text_extra

    try:
        require_text_extra("bench superlm")
    except ImportError as err:  # before any work, as one line (the commands' own errors are guarded alike)
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


SpaceOption = Annotated[str, typer.Option(help="AutoDistil sub-space: autodistil-base, -small or -tiny.")]
DeviceOption = Annotated[str, typer.Option(help="auto (the GPU where there is one), cpu, cuda or cuda:N.")]
TasksOption = Annotated[str, typer.Option(help="Comma-separated GLUE tasks: sst2, cola, mrpc, rte.")]
FinetuneStepsOption = Annotated[int, typer.Option(help="Fine-tuning steps per GLUE task.")]
FinetuneBatchOption = Annotated[int, typer.Option(help="Examples per fine-tuning step.")]
FinetuneLrOption = Annotated[float, typer.Option(help="Peak learning rate of fine-tuning (AdamW).")]
GlueSeqLenOption = Annotated[int, typer.Option(help="Tokens per GLUE example (pairs share them).")]
GlueSentencesOption = Annotated[
    int,
    typer.Option(help="Add at most N GLUE training sentences to the generic distillation corpus (0: none)."),
]
DevLimitOption = Annotated[int | None, typer.Option(help="Score on the first N dev examples only (default: all).")]


def _columns() -> tuple:
    return (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def _tasks(text: str) -> tuple[str, ...]:
    from ..lm import TASKS

    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown GLUE task {task!r}. Valid choices: {', '.join(TASKS)}")
    if not tasks:
        raise ValueError(f"--tasks is empty. Valid choices: {', '.join(TASKS)}")
    return tasks


@command(superlm_app, name="train")
def train_command(
    space: SpaceOption,
    steps: Annotated[int, typer.Option(help="Total training steps (a resumed run continues up to it).")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then linear decay).")] = 1e-4,
    n_random: Annotated[int, typer.Option(help="Random students per step besides the largest and smallest.")] = 2,
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence of the corpus.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the batches and the sampled students.")] = 0,
    glue_sentences: GlueSentencesOption = 0,
    out: Annotated[
        Path | None, typer.Option(help="Checkpoint file (default: $BENCH_SUPERLM_DIR/<space>/superlm.pt).")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Save a checkpoint every N steps.")] = 100,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint where there is one.")] = True,
    device: DeviceOption = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train the SuperLM of a sub-space by relation distillation from the teacher (sandwich rule)."""
    from spaces.autodistil import checkpoint_path, grid_of

    from ..lm import SuperLMSettings, load_corpus, resolve_device, train_superlm

    grid_of(space)
    settings = SuperLMSettings(
        steps=steps, batch_size=batch_size, lr=lr, n_random=n_random, seed=seed, seq_len=seq_len,
        glue_sentences=glue_sentences,
    ).check()  # fmt: skip
    dev = resolve_device(device)
    path = checkpoint_path(space, out)
    corpus = load_corpus(data_root, seq_len=seq_len, glue=glue_sentences)
    console.print(
        f"SuperLM of {space} -> {path}: {steps} steps of {batch_size} sequences on {dev} "
        f"(corpus {' + '.join(corpus.sources)}: {len(corpus.train):,} training, {len(corpus.heldout):,} held-out "
        "sequences)",
        highlight=False,
    )
    with Progress(*_columns(), TextColumn("loss {task.fields[loss]}"), console=console, disable=not progress) as bar:
        task = bar.add_task("training", total=steps, loss="-")

        def on_step(step: int, loss: float) -> None:
            bar.update(task, completed=step, loss=f"{loss:.4f}")

        result = train_superlm(
            space, settings, out=out, device=str(dev), resume=resume, checkpoint_every=checkpoint_every,
            data_root=data_root, corpus=corpus, on_step=on_step,
        )  # fmt: skip
    done = result.steps - result.start_step
    rate = f", {result.steps_per_second:.2f} steps/s" if done else ""
    last = f", last loss {result.losses[-1]:.4f}" if result.losses else ""
    console.print(f"step {result.steps} saved to {result.path} ({done} new steps{rate}{last})", highlight=False)


def _finetune_settings(
    steps: int, batch_size: int, lr: float, seq_len: int, dev_limit: int | None, seed: int
) -> FinetuneSettings:
    from ..lm import FinetuneSettings

    return FinetuneSettings(
        steps=steps, batch_size=batch_size, lr=lr, seq_len=seq_len, seed=seed, dev_limit=dev_limit
    ).check()


@command(superlm_app, name="ground-truth")
def ground_truth_command(
    space: SpaceOption,
    sample: Annotated[int | None, typer.Option(help="Measure a seeded uniform sample of N students.")] = None,
    arch: Annotated[
        list[str] | None, typer.Option(help="Measure these students (index or string; repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the batches and the held-out set.")] = 0,
    distil_steps: Annotated[int, typer.Option(help="Relation-distillation steps of each student.")] = 200,
    distil_batch_size: Annotated[int, typer.Option(help="Sequences per distillation step.")] = 32,
    heldout_size: Annotated[int, typer.Option(help="Held-out sequences of the distillation loss.")] = 256,
    glue_sentences: GlueSentencesOption = 0,
    tasks: TasksOption = "sst2,cola,mrpc,rte",
    finetune_steps: FinetuneStepsOption = 200,
    finetune_batch_size: FinetuneBatchOption = 32,
    finetune_lr: FinetuneLrOption = 1e-4,
    glue_seq_len: GlueSeqLenOption = 64,
    dev_limit: DevLimitOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Table (default: $BENCH_AUTODISTIL_DIR/<space>/ground_truth.csv).")
    ] = None,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Distil sampled students one by one, fine-tune each on GLUE, and write the ground-truth table
    (read by --ground-truth autodistil[:PATH] or csv:PATH). Running it again resumes."""
    from spaces import get_space

    from ..lm import GroundTruthSettings, build_ground_truth, sample_students

    sp = get_space(space)
    if getattr(sp, "input_kind", "image") != "tokens":
        raise ValueError(f"space {space!r} is not an AutoDistil sub-space (autodistil-base, -small, -tiny)")
    if bool(sample) == bool(arch):
        raise ValueError("choose the students with exactly one of --sample N or --arch")
    archs = sample_students(space, sample, seed) if sample else [sp.parse(a) for a in arch or []]
    settings = GroundTruthSettings(
        distil_steps=distil_steps, distil_batch_size=distil_batch_size, heldout_size=heldout_size,
        finetune=_finetune_settings(finetune_steps, finetune_batch_size, finetune_lr, glue_seq_len, dev_limit, seed),
        tasks=_tasks(tasks), seed=seed, glue_sentences=glue_sentences,
    ).check()  # fmt: skip
    with Progress(*_columns(), console=console) as bar:
        task = bar.add_task(f"students of {space}", total=len(archs))

        def on_student(name: str, row: dict[str, float] | None) -> None:
            if row is not None:
                bar.console.print(
                    f"{name}: held-out loss {row['distil_loss']:.4f}, GLUE avg {row['glue_avg']:.2f} "
                    f"({row['distil_seconds']:.0f} s distilling, {row['finetune_seconds']:.0f} s fine-tuning)",
                    highlight=False,
                )
            bar.advance(task)

        path = build_ground_truth(
            space, archs, settings, out=out, device=device, data_root=data_root, on_student=on_student
        )
    console.print(f"wrote {path}", highlight=False)


def _selected(runs: list[Path], archs: list[str]) -> list[tuple[str, str, str]]:
    """(label, space, arch string) of each student named by --arch SPACE:ARCH or a run folder's best.json."""
    from spaces import get_space

    chosen = []
    for text in archs:
        space, sep, name = text.partition(":")
        if not sep:
            raise ValueError(f"--arch takes SPACE:ARCH, e.g. autodistil-tiny:L4_H160_A6_R3.0; got {text!r}")
        sp = get_space(space)
        chosen.append((f"{space} student", space, sp.to_str(sp.parse(name))))
    for run in runs:
        best = run / "best.json"
        if not best.is_file():
            raise FileNotFoundError(f"{best} does not exist (a single-objective bench run writes it)")
        record = json.loads(best.read_text())
        if not record or "arch" not in record or "space" not in record:
            raise ValueError(f"{best} names no selected architecture")
        sp = get_space(record["space"])
        chosen.append((f"{record['space']} ({record.get('proxy', 'search')})", record["space"],
                       sp.to_str(sp.parse(record["arch"]))))  # fmt: skip
    return chosen


LrsOption = Annotated[
    str, typer.Option(help="Fine-tuning learning rates to choose from per model and task (on a training split).")
]
SeedsOption = Annotated[int, typer.Option(help="Fine-tuning seeds per model and task (mean ± std).")]


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} takes comma-separated numbers like 1e-4,3e-4,1e-3; got {text!r}") from None
    if not values:
        raise ValueError(f"{what} is empty; give comma-separated numbers like 1e-4,3e-4,1e-3")
    return values


def protocol_of(lrs: str, seeds: int, finetune: FinetuneSettings, tasks: str) -> Protocol:
    from ..lm import Protocol

    return Protocol(lrs=_floats(lrs, "--lrs"), seeds=seeds, finetune=finetune, tasks=_tasks(tasks)).check()


def protocol_caption(protocol: Protocol) -> str:
    """The fine-tuning budget and protocol, as the tables' captions state it."""
    ft = protocol.finetune
    limit = f"the first {ft.dev_limit} dev examples" if ft.dev_limit else "the whole dev set"
    return (
        f"GLUE dev metrics (mean ± std over {protocol.seeds} seeds; {limit}) after {ft.steps} fine-tuning steps of "
        f"{ft.batch_size} examples of {ft.seq_len} tokens, the learning rate chosen per model and task from "
        f"{', '.join(f'{lr:g}' for lr in protocol.lrs)} on 10 % of the training set held out"
    )


@command(superlm_app, name="compare")
def compare_command(
    arch: Annotated[list[str] | None, typer.Option(help="A selected student, SPACE:ARCH (repeatable).")] = None,
    run: Annotated[list[Path] | None, typer.Option(help="A bench run folder whose best.json names a student.")] = None,
    truncated: Annotated[list[int] | None, typer.Option(help="Truncated teachers: its first N layers.")] = None,
    tasks: TasksOption = "sst2,cola,mrpc,rte",
    finetune_steps: FinetuneStepsOption = 200,
    finetune_batch_size: FinetuneBatchOption = 32,
    lrs: LrsOption = "1e-4,3e-4,1e-3",
    seeds: SeedsOption = 3,
    glue_seq_len: GlueSeqLenOption = 64,
    dev_limit: DevLimitOption = None,
    out: Annotated[Path, typer.Option(help="Folder of the table (LaTeX, Markdown, CSV).")] = Path(
        "results/autodistil/compare"
    ),
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Selected students (weights inherited from their SuperLM, no retraining) against the teacher,
    truncated teachers and the majority class: params, FLOPs and GLUE dev metrics under one fine-tuning
    protocol (learning rate chosen on a training split, several seeds, one-class results flagged)."""
    from spaces.autodistil import TEACHER_ARCH, checkpoint_path, load_superlm

    from ..lm import majority_model_row, model_row, protocol_table, resolve_device, teacher_network, truncated_teacher

    protocol = protocol_of(lrs, seeds, _finetune_settings(finetune_steps, finetune_batch_size, 1e-4, glue_seq_len,
                                                          dev_limit, 0), tasks)  # fmt: skip
    dev = resolve_device(device)
    layers = truncated if truncated is not None else [3]
    for n in layers:
        if not 1 <= n < TEACHER_ARCH.layers:
            raise ValueError(f"--truncated takes 1..{TEACHER_ARCH.layers - 1} layers, got {n}")
    models = [("teacher", "-", teacher_network())]
    models += [(f"teacher, first {n} layers", "-", truncated_teacher(n)) for n in layers]
    steps, corpora = [], {}
    for label, space, name in _selected(run or [], arch or []):
        superlm, meta = load_superlm(checkpoint_path(space), space)
        steps.append(f"{space} {meta['step']}")
        corpora[space] = meta.get("corpus", "not recorded")
        models.append((f"{label}, SuperLM step {meta['step']}", space, superlm.sub_network(_parse(space, name))))
    rows = [{**majority_model_row(protocol, data_root), "space": "-"}]
    for label, space, net in models:
        rows.append({**model_row(label, net.to(dev), protocol, data_root), "space": space})
        console.print(f"{label} {rows[-1]['arch']}: {rows[-1]['glue_avg']:.2f} {rows[-1]['flags']}", highlight=False)
    budget = f"; SuperLM steps: {', '.join(steps)}" if steps else ""
    table = protocol_table(
        rows, protocol.tasks, name="autodistil_compare", label="tab:autodistil-compare",
        caption=(f"Selected students (weights inherited from their SuperLM) against the teacher, truncated teachers "
                 f"and the majority class. {protocol_caption(protocol)}{budget}."),
        config={"protocol": protocol, "models": [r["model"] for r in rows], "superlm_corpus": corpora},
    )  # fmt: skip
    for path in table.write(out):
        console.print(f"wrote {path}", highlight=False)


def _parse(space: str, name: str) -> StudentArch:
    from spaces import get_space

    sp = get_space(space)
    return sp.parse(name)


from . import _lm_headline  # noqa: E402,F401  (registers ``bench superlm headline``)
