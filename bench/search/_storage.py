"""Where studies live: Optuna's own storages, and a lock that makes the trial budget exact across workers.

``--storage`` accepts a file path (a journal file: ``optuna.storages.JournalStorage`` on one machine,
whose partial last record, left by a crash, is set aside before anything is appended; see ``_journal``),
an RDB URL (``sqlite:///...`` on one machine, ``postgresql://...`` across machines, bound to the installed
driver by ``bench.databases``; Optuna's heartbeat fails the trials of a worker that died) or ``memory``
(in-process, nothing kept).

A worker decides whether to start another trial while holding the study's *budget lock*: a
``flock`` on the journal file, or on the folder of a SQLite file (SQLite's own locks on the database file
must not be disturbed), a PostgreSQL advisory lock for PostgreSQL. No lock file is left behind.
Counting the finished and running trials and creating the next one happen under that lock, so
several workers never start more trials than the budget leaves.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import hashlib
import inspect
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..databases import absolute_database_url, database_url
from ._journal import SafeJournalFileBackend

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats (RDB storages)
GRACE_PERIOD = 60  # seconds without a heartbeat after which a running trial is failed and retried
CREATE_ATTEMPTS = 5
MEMORY = "memory"

StaleCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass
class OpenedStorage:
    """An Optuna storage with its budget lock and a printable description (no password)."""

    storage: optuna.storages.BaseStorage
    lock: BudgetLock
    kind: str  # "journal", "sqlite", "postgresql", "memory"
    display: str


class BudgetLock(abc.ABC):
    """A lock shared by every worker of one storage (see the module docstring)."""

    @abc.abstractmethod
    def hold(self, study_name: str) -> contextlib.AbstractContextManager[None]:
        """Hold the lock of ``study_name`` for the duration of a ``with`` block."""


class FileLock(BudgetLock):
    """``flock`` on an existing file or folder ``path``: exclusive among processes of one machine, dropped when
    a process dies, and nothing created for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, study_name: str) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the lock


class ThreadLock(BudgetLock):
    """For the in-memory storage, which only one process sees."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, study_name: str) -> Iterator[None]:
        with self._lock:
            yield


class PostgresAdvisoryLock(BudgetLock):
    """``pg_advisory_lock`` on a key derived from the study's name; the server drops it if a worker dies."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    @contextlib.contextmanager
    def hold(self, study_name: str) -> Iterator[None]:
        key = int.from_bytes(hashlib.sha1(f"bench-budget|{study_name}".encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def display_url(url: str) -> str:
    """``url`` with any password masked, for logs and manifests."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def absolute_url(url: str) -> str:
    """``url`` with a relative file path made absolute (a journal path, ``sqlite:///PATH``), the password of a
    server URL masked: what manifests and summaries record, valid wherever they are read."""
    if url == MEMORY:
        return url
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    return display_url(absolute_database_url(url))


def default_storage(out_dir: Path) -> str:
    return str(out_dir / "journal.log")


def open_storage(url: str, *, on_stale: StaleCallback | None = None) -> OpenedStorage:
    """Open the storage that ``url`` names; a ValueError with one line when it cannot be reached."""
    if url == MEMORY:
        return OpenedStorage(optuna.storages.InMemoryStorage(), ThreadLock(), "memory", MEMORY)
    if "://" not in url:
        return _open_journal(Path(url).expanduser())
    url = database_url(url)
    try:
        dialect = make_url(url).get_backend_name()
    except sa.exc.ArgumentError as err:
        raise ValueError(f"storage {url!r} is neither a file path nor a database URL: {err}") from None
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(
            f"storage dialect {dialect!r} is not supported; use a journal file path, sqlite:///PATH or postgresql://..."
        )
    shown = display_url(url)
    if dialect == "sqlite":
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError(f"storage {shown!r}: use 'memory' for an in-memory study, or a SQLite file")
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock: BudgetLock = FileLock(path.parent)
    else:
        lock = PostgresAdvisoryLock(url)
    storage = _open_rdb(url, shown, on_stale)
    return OpenedStorage(storage, lock, dialect, absolute_url(url))


def _open_journal(path: Path) -> OpenedStorage:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = SafeJournalFileBackend(str(path))
    except OSError as err:
        raise ValueError(f"cannot open journal storage {path}: {err.strerror or err}") from None
    storage = optuna.storages.JournalStorage(backend)
    return OpenedStorage(storage, FileLock(path), "journal", str(path.resolve()))


def _open_rdb(url: str, shown: str, on_stale: StaleCallback | None) -> optuna.storages.BaseStorage:
    # Optuna renamed the callback in 4.9; pass it under the name this version knows.
    params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    callback_name = (
        "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    )
    kwargs = {callback_name: on_stale} if on_stale is not None else {}
    engine_kwargs = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                rdb = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_INTERVAL,
                    grace_period=GRACE_PERIOD,
                    **kwargs,
                )
            break
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as err:
            # Workers opening a new database together race to create Optuna's tables; the losers
            # see a duplicate table or row and find the tables made when they try again.
            if attempt == CREATE_ATTEMPTS - 1:
                raise ValueError(f"cannot set up storage {shown}: {_first_line(err)}") from None
            time.sleep(0.5 * (attempt + 1))
        except sa.exc.SQLAlchemyError as err:
            raise ValueError(f"cannot reach storage {shown}: {_first_line(err)}") from None
    # The caching wrapper Optuna puts around every RDB storage of a study: finished trials are read
    # once, so counting trials each round stays cheap in a long study. The study and the trial loop
    # share this one instance.
    return optuna.storages.get_storage(rdb)


def _first_line(err: sa.exc.SQLAlchemyError) -> str:
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]
