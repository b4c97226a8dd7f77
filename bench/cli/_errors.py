"""What a command prints when it fails: one line naming the problem and what to do, never a traceback.

:func:`describe` turns an exception the user can act on (bad arguments, a missing or damaged file, a folder
that cannot be written, a database that cannot be opened, a trial that failed inside Optuna) into that line
and an exit code; anything else is a bug and keeps its traceback. ``--debug`` (or ``$BENCH_DEBUG=1``) shows
the traceback of every error.

Heavy libraries (SQLAlchemy, torch, Optuna) are recognised by their exception classes' module names, so
this module imports none of them.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import re
import sqlite3
import tarfile
import zlib

DEBUG_ENV = "BENCH_DEBUG"
#: Exit codes: 2 for arguments and inputs the user gives, 1 for a file, folder or database that fails.
USAGE, FAILURE = 2, 1

_USER = (ValueError, KeyError, ImportError)


_debug = False


def set_debug(value: bool) -> None:
    """Set by ``bench --debug`` for the command that follows (``$BENCH_DEBUG`` is read as well)."""
    global _debug
    _debug = value


def debug_enabled() -> bool:
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _module_names(err: BaseException) -> list[str]:
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(err).__mro__]


def _database(err: BaseException) -> str | None:
    """The line for an error of SQLite or SQLAlchemy, or None for another error."""
    names = _module_names(err)
    if not (isinstance(err, sqlite3.Error) or any(n.startswith("sqlalchemy.") for n in names)):
        return None
    detail = _first_line(str(getattr(err, "orig", None) or err))
    if "file is not a database" in detail:
        hint = "the file is not an SQLite database (damaged or another kind of file): move it aside or pass another URL"
    elif "unable to open database file" in detail or "readonly database" in detail:
        hint = "check that the database's folder exists and is writable, or pass another URL"
    else:
        hint = "check the --cache/--storage URL and that the database server is running and reachable"
    return f"database error: {detail}; {hint}"


def _os_error(err: OSError) -> str:
    where = err.filename if err.filename is not None else ""
    if isinstance(err, IsADirectoryError):
        return f"{where} is a folder, not a file; pass the path of a file"
    if isinstance(err, (NotADirectoryError, FileExistsError)) or err.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"cannot create {where}: a file is in the way of a folder on that path; choose another path"
    if isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {where} ({err.strerror}); choose another path or fix its permissions"
    if err.errno == errno.ENOSPC:
        return f"no space left on the device writing {where}; free some space or write elsewhere"
    reason = err.strerror or _first_line(str(err)) or type(err).__name__
    return f"{reason}: {where}" if where else reason


def describe(err: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for an error the user can act on; None for anything else (a bug)."""
    names = _module_names(err)
    if any(n.startswith("optuna.") and "TrialPruned" not in n for n in names) and err.__cause__ is not None:
        # Optuna re-raises what failed inside a trial wrapped: name what failed.
        return describe(err.__cause__)
    database = _database(err)
    if database is not None:
        return database, FAILURE
    if isinstance(err, tarfile.TarError | EOFError | zlib.error):
        return f"a data file is damaged or truncated: {_first_line(str(err))}; replace it with an intact copy", FAILURE
    if isinstance(err, pickle.UnpicklingError):
        return f"a file is not readable as saved data: {_first_line(str(err))[:160]}", FAILURE
    if isinstance(err, FileNotFoundError):
        message = str(err)
        if err.filename is not None and err.strerror:
            message = f"{err.filename} does not exist"
        return _first_line(message), USAGE
    if isinstance(err, OSError):
        if err.errno is None and err.args:
            return _first_line(str(err)), FAILURE
        return _os_error(err), FAILURE
    if isinstance(err, _USER):
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        return _first_line(str(message)) or type(err).__name__, USAGE
    return None


_TRIAL_FAILED = re.compile(r"Trial \d+ failed")


class _TrialFailureFilter(logging.Filter):
    """Drops Optuna's "Trial N failed" log records (one with a traceback): the command reports the error itself,
    and a trial that failed is counted in the run's summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debug_enabled():
            return True
        return _TRIAL_FAILED.match(record.getMessage()) is None


_FILTER = _TrialFailureFilter()


def quiet_trial_tracebacks() -> None:
    """Install the filter of Optuna's trial-failure tracebacks (once)."""
    for name in ("optuna", "optuna.study._optimize", "optuna.study.study"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def quiet_optuna() -> None:
    """Optuna at warning level, without its experimental notes: a command shows its own progress, and a line
    per trial would drown it."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def worker_setup(debug: bool, quiet: bool = True) -> None:
    """What a command's worker processes (``sweep --jobs N``) inherit from it: ``--debug``, the trace filter and
    (``quiet``) :func:`quiet_optuna`."""
    set_debug(debug)
    quiet_trial_tracebacks()
    if quiet:
        quiet_optuna()
