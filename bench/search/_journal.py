"""A journal file that survives a crash in the middle of a write.

A process killed (or a machine stopped) while appending to a journal can leave its last record cut short.
Optuna reads past such a record, but the next record appended would join it into one line that cannot be
read, and from then on the journal could not be loaded. Here, with Optuna's journal lock held, a partial last
record is set aside first: its bytes are appended to ``<journal>.partial`` and the journal is cut back to its
last whole record, said in one warning. A study so loses at most the record being written; the trial it
belonged to, left running by a worker that is gone, is failed and retried like any other.

The journal's lock is an ``flock`` on ``<journal>.flock`` (:class:`FlockJournalLock`), a file that exists only
while a writer holds it: the kernel releases the lock when its holder dies, so a worker killed while appending
holds no one up. (Optuna's own file locks are files that a dead holder leaves behind; the others wait out a
30 s grace period before taking them over.)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock, get_lock_file

log = logging.getLogger("bench.search")
_CHUNK = 1 << 16


class FlockJournalLock(BaseJournalFileLock):
    """Exclusive among the processes and threads of one machine (and of NFS clients whose server supports
    locks), released by the kernel when the holding process dies.

    The holder removes the lock file as it releases it, so none is left beside the study. A writer that locked
    a file which has meanwhile been removed (or replaced) tries again, so two writers never hold locks on two
    files of one name; a file left by a killed holder is taken and removed by the next writer.
    """

    SUFFIX = ".flock"

    def __init__(self, journal: str) -> None:
        self.path = journal + self.SUFFIX
        self._held = threading.local()  # each thread its own descriptor: flock excludes them from each other

    def acquire(self) -> bool:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                mine = os.fstat(fd)
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
            except BaseException:
                os.close(fd)
                raise
            if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                self._held.fd = fd
                return True
            os.close(fd)  # the file was removed by its last holder after we opened it: lock the new one

    def release(self) -> None:
        fd = getattr(self._held, "fd", None)
        if fd is None:
            raise RuntimeError(f"journal lock {self.path} is not held by this thread")
        self._held.fd = None
        try:
            os.unlink(self.path)  # while still holding it: a waiter on this file will see it gone and retry
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)  # closing the descriptor releases the lock


class SafeJournalFileBackend(JournalFileBackend):
    """Optuna's journal file backend that sets a partial last record aside before appending, under a lock that
    dies with its holder."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path, lock_obj=FlockJournalLock(file_path))
        self.set_aside: list[str] = []  # one line for each partial record set aside
        with get_lock_file(self._lock):
            self._repair()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs)
        with get_lock_file(self._lock):
            self._repair()
            with open(self._file_path, "ab") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())

    def _repair(self) -> None:
        """Make the file end with a whole record; call with the journal lock held."""
        message = end_with_whole_record(Path(self._file_path))
        if message:
            self.set_aside.append(message)
            log.warning(message)


def end_with_whole_record(path: Path) -> str | None:
    """Set aside a partial last record of the journal ``path``; the line saying what was done, or None."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        start = _after_last_newline(fh, size)
        fh.seek(start)
        tail = fh.read()
        if _is_record(tail):  # whole but for its newline: complete it, nothing is lost
            fh.seek(size)
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            return None
        side = path.with_name(path.name + ".partial")
        with open(side, "ab") as out:
            out.write(tail + b"\n")
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(start)
        fh.flush()
        os.fsync(fh.fileno())
    return (
        f"journal {path} ended in a partial record ({len(tail)} bytes, cut short by a crash while writing): "
        f"set it aside in {side}; the study goes on from the record before it"
    )


def _after_last_newline(fh: Any, size: int) -> int:
    """The offset just after the last newline of the open file ``fh`` of ``size`` bytes (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        fh.seek(start)
        found = fh.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def _is_record(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False
