"""The registry every space registers itself with."""

from ._base import SearchSpace
from ._registry import Registry

SPACES: Registry[SearchSpace] = Registry("space")
