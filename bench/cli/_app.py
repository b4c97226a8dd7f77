"""The typer application, its shared options and the error handling every command shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from ..data import DATA_ROOT_ENV

app = typer.Typer(
    name="bench",
    help="Benchmark training-free proxies and Optuna searchers for distillation-aware NAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", envvar=DATA_ROOT_ENV, help=f"Folder holding the datasets (or ${DATA_ROOT_ENV})."),
]

# Errors that are the user's to fix: shown as one line and exit code 2, never as a traceback.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, ImportError, PermissionError)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that user errors print one line naming the problem and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def command(group: typer.Typer = app, name: str | None = None, **kwargs):
    """``group.command`` with :func:`guarded` applied."""

    def register(fn):
        group.command(name, **kwargs)(guarded(fn))
        return fn

    return register


def run() -> None:
    app()
