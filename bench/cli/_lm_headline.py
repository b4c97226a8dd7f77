"""``bench superlm headline``: AutoDistil's headline table and the K=1 ablation at one budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import DataRootOption, command, console
from ._lm import (
    DeviceOption,
    DevLimitOption,
    FinetuneBatchOption,
    FinetuneStepsOption,
    GlueSentencesOption,
    GlueSeqLenOption,
    LrsOption,
    SeedsOption,
    TasksOption,
    _finetune_settings,
    _floats,
    protocol_caption,
    protocol_of,
    superlm_app,
)
from ._options import ThreadsOption


@command(superlm_app, name="headline")
def headline_command(
    budgets: Annotated[str, typer.Option(help="Comma-separated parameter budgets, e.g. 5e6,10e6,16e6.")] = (
        "5e6,10e6,16e6"
    ),
    superlm_steps: Annotated[int, typer.Option(help="Steps of each K=3 SuperLM (the K=1 one gets 3x).")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per SuperLM (and baseline) step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate of SuperLMs and baselines.")] = 1e-4,
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence of the corpus.")] = 128,
    glue_sentences: GlueSentencesOption = 0,
    score_size: Annotated[int, typer.Option(help="Held-out sequences that score candidates and models.")] = 64,
    tasks: TasksOption = "sst2,cola,mrpc,rte",
    finetune_steps: FinetuneStepsOption = 200,
    finetune_batch_size: FinetuneBatchOption = 32,
    lrs: LrsOption = "1e-4,3e-4,1e-3",
    seeds: SeedsOption = 3,
    glue_seq_len: GlueSeqLenOption = 64,
    dev_limit: DevLimitOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the SuperLMs' batches and students.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder of the SuperLMs and the tables.")] = Path(
        "results/autodistil/headline"
    ),
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    threads: ThreadsOption = None,
) -> None:
    """AutoDistil's headline experiment: train three sub-space SuperLMs and one over their union with the same
    total steps, pick students under each parameter budget without retraining, distil a truncated and a
    uniformly narrowed teacher with the same objective and steps, fine-tune all with one protocol, and write
    the headline table and the K=1 against K=3 table. Rerunning resumes the SuperLMs."""
    from ..lm import HeadlineSettings, SuperLMSettings, headline_tables, run_headline

    protocol = protocol_of(lrs, seeds, _finetune_settings(finetune_steps, finetune_batch_size, 1e-4, glue_seq_len,
                                                          dev_limit, 0), tasks)  # fmt: skip
    settings = HeadlineSettings(
        budgets=_floats(budgets, "--budgets"),
        superlm=SuperLMSettings(steps=superlm_steps, batch_size=batch_size, lr=lr, seed=seed, seq_len=seq_len,
                                glue_sentences=glue_sentences),
        protocol=protocol, score_size=score_size,
    ).check()  # fmt: skip
    rows = run_headline(settings, out, device=device, root=data_root,
                        log=lambda line: console.print(line, highlight=False))  # fmt: skip
    for table in headline_tables(rows, settings, protocol_caption(protocol)):
        for path in table.write(out):
            console.print(f"wrote {path}", highlight=False)
