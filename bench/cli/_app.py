"""The typer application, its shared options and the error handling every command shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from .. import __version__
from ..data import DATA_ROOT_ENV
from ._errors import DEBUG_ENV, debug_enabled, describe, quiet_trial_tracebacks, set_debug
from ._lazy import LazyGroup


def _version(value: bool) -> None:
    if value:
        typer.echo(f"diswot-bench {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help=f"Show the full traceback of an error (or ${DEBUG_ENV}=1)."),
    ] = False,
) -> None:
    """Benchmark training-free proxies and Optuna searchers for distillation-aware NAS."""
    set_debug(debug)


app = typer.Typer(
    name="bench",
    help="Benchmark training-free proxies and Optuna searchers for distillation-aware NAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,  # commands are imported when they run (bench.cli._lazy)
    callback=_main,
)
P = ParamSpec("P")
R = TypeVar("R")

#: Width of output that goes to a file or a pipe: wide enough that no table cell or line is ever cut.
UNBOUNDED_WIDTH = 100_000


class FullWidthConsole(Console):
    """A rich console that fits a terminal, and cuts nothing short anywhere else (a file, a pipe, another
    program): there, lines and tables take the width they need."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        return size if self.is_terminal else ConsoleDimensions(UNBOUNDED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = FullWidthConsole()
err_console = FullWidthConsole(stderr=True)

DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", envvar=DATA_ROOT_ENV, help=f"Folder holding the datasets (or ${DATA_ROOT_ENV})."),
]


def report_error(err: BaseException) -> None:
    """Print ``err`` as one ``error:`` line and exit non-zero (see :mod:`bench.cli._errors`); with ``--debug``,
    or for an error that is not the user's to fix (a bug), let it propagate with its traceback."""
    described = None if debug_enabled() else describe(err)
    if described is None:
        raise err
    message, code = described
    # escape: a message may hold brackets, e.g. pip install -e ".[text]", that rich would take for markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that the errors a user can act on print one line naming the problem and exit
    non-zero (2 for arguments and inputs, 1 for files, folders and databases that fail)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        quiet_trial_tracebacks()
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            report_error(err)
            raise  # not reached: report_error raises

    return wrapper


def command(group: typer.Typer = app, name: str | None = None, **kwargs):
    """``group.command`` with :func:`guarded` applied."""

    def register(fn):
        group.command(name, **kwargs)(guarded(fn))
        return fn

    return register


def run() -> None:
    app()
