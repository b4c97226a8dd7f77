"""Options shared by the commands that compute."""

from __future__ import annotations

from typing import Annotated

import typer

from ..threads import MAX_DEFAULT_THREADS, THREADS_ENV, set_threads


def _set_threads(value: int | None) -> int:
    # Applied as the option is parsed, before the command runs, whether it was given or not.
    return set_threads(value)


ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        envvar=THREADS_ENV,
        min=1,
        callback=_set_threads,
        show_default=False,
        help=f"Threads torch computes with (or ${THREADS_ENV}; default: $OMP_NUM_THREADS where set, else the cores "
        f"idle at the start, 1 to {MAX_DEFAULT_THREADS}).",
    ),
]
