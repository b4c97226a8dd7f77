"""``bench paper``: every table and figure of an experiment file, from its score packs and search trials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import DataRootOption, app, command, console


@command(app, name="paper")
def paper_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment file (TOML), e.g. experiments/nb201-cifar10.toml.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the tables and figures.")],
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Also draw the figures (PNG and PDF).")] = True,
    data_root: DataRootOption = None,
) -> None:
    """The paper's tables and figures from committed data alone: the proxies' correlation views over score packs
    and the search comparison at each budget; nothing is scored, and the same inputs write the same bytes."""
    from ..analysis._paper import load_experiment, write_paper

    written = write_paper(load_experiment(experiment), out, data_root=data_root, plot=plots)
    console.print(f"wrote {len(written)} files under {out}", highlight=False)
