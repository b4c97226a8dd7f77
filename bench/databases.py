"""Database URLs as SQLAlchemy takes them, in one place for every storage and score cache.

``postgresql://user@host/db`` names no driver, and SQLAlchemy 2.1 then assumes psycopg 3. The URL is bound to
the driver that is installed: psycopg 3 where it is, else psycopg2 (the ``postgres`` extra). A URL that names
its driver (``postgresql+psycopg2://...``) is kept as it is.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: Driver module -> SQLAlchemy dialect name, in order of preference.
_POSTGRES_DRIVERS = {"psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2"}


def postgres_driver() -> str:
    """The SQLAlchemy dialect of the PostgreSQL driver installed; ValueError with what to install where none is."""
    for module, dialect in _POSTGRES_DRIVERS.items():
        if importlib.util.find_spec(module) is not None:
            return dialect
    raise ValueError(
        "a postgresql:// URL needs a PostgreSQL driver: install the postgres extra, "
        "pip install -e '.[postgres]' (psycopg2), or psycopg"
    )


def database_url(url: str) -> str:
    """``url`` with a driverless PostgreSQL scheme bound to the installed driver; any other URL unchanged."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return f"{postgres_driver()}://{url.removeprefix(scheme)}"
    return url


def absolute_database_url(url: str) -> str:
    """``url`` with a relative SQLite file made absolute (``sqlite:///PATH``), so that it names one file wherever
    it is used; any other URL unchanged (its password kept)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not path.startswith("file:"):
            return f"sqlite:///{Path(path).expanduser().resolve()}"
    return url
