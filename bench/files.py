"""Files the suite writes and reads whole: written atomically, checked before long work, read with a clear error.

An output is written to a temporary file in its own folder and moved over its name in one step
(``os.replace``), so a crash, a full disk or an error midway leaves the previous file or none, never a
partial one that a later command would read as complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class OutputError(OSError):
    """An output cannot be written where it was asked for; the message names the path and what to do."""


def _reason(err: OSError) -> str:
    if isinstance(err, (NotADirectoryError, FileExistsError)) or err.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file is in the way of a folder on that path"
    return err.strerror or str(err)


def check_writable_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """``folder`` if it is, or can be created as, a writable folder; :class:`OutputError` naming it and why
    otherwise. Nothing is created: run it before long work (or before a study is made), so that a bad
    ``--out`` fails at once and leaves nothing behind."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = "a file is in the way of a folder on that path"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"{existing} is not writable"
    else:
        return folder
    raise OutputError(f"cannot write to the {what} {folder} ({reason}); choose another path or fix its permissions")


def ensure_writable_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """``folder``, created where missing (see :func:`check_writable_dir`); :class:`OutputError` where it
    cannot be."""
    folder = check_writable_dir(folder, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot write to the {what} {folder} ({_reason(err)}); choose another path or fix its permissions"
        ) from None
    return folder


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """A file opened for writing under a temporary name beside ``path``, moved onto ``path`` when the block
    ends without an error and removed when it raises. ``mode`` is ``"w"`` or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    folder = ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_csv(frame: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write a pandas DataFrame as CSV atomically (``kwargs`` go to ``DataFrame.to_csv``)."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        frame.to_csv(fh, **kwargs)
    return Path(path)


def load_torch(path: str | os.PathLike, what: str, *, map_location: Any = "cpu") -> Any:
    """``torch.load`` of a weights-only file, with one :class:`ValueError` naming ``what`` and the file where
    it is missing its content: empty, truncated, not a PyTorch file, or holding objects beyond tensors."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {path} is empty; write it again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for a damaged file
        if isinstance(err, pickle.UnpicklingError):
            detail = "damaged, or not a file that torch.save wrote with tensors only"
        else:
            lines = str(err).strip().splitlines()
            detail = f"{type(err).__name__}: {lines[0][:100]}" if lines else type(err).__name__
        raise ValueError(f"{what} {path} is not a readable PyTorch weights file ({detail}); write it again") from err
