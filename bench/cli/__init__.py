"""The ``bench`` command line. Each module adds its commands to :data:`app`."""

from . import (
    _distill,  # noqa: F401
    _info,  # noqa: F401  (registers commands)
    _lm,  # noqa: F401
    _report,  # noqa: F401
    _score,  # noqa: F401
    _scores,  # noqa: F401
    _search,  # noqa: F401  (registers commands)
)
from ._app import app, run

__all__ = ["app", "run"]
