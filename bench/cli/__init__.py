"""The ``bench`` command line. Each module adds its commands to :data:`app`; a command's module is imported
only when the command runs (:mod:`bench.cli._lazy`), so that ``bench --help`` and the listings start at once."""

from ._app import app, run

__all__ = ["app", "run"]
