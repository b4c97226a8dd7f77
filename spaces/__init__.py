"""Search spaces: one registry, one package per space.

Adding a space is one package that registers a factory with :data:`SPACES`::

    @SPACES.register("myspace")
    class MySpace(SearchSpace): ...

and one import line below.
"""

from ._base import ArchInfo, Cost, FeatureNetwork, Features, PackedNetwork, SearchSpace, StackedNetwork
from ._catalog import SPACES
from ._registry import Registry, UnknownNameError


def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``; ValueError listing the valid names otherwise."""
    return SPACES.create(name)


def list_spaces(pattern: str = "*") -> list[str]:
    return SPACES.names(pattern)


# Importing a space's package registers it.
from . import autodistil, nb201, resnet_s1  # noqa: E402,F401

__all__ = [
    "SPACES",
    "ArchInfo",
    "Cost",
    "FeatureNetwork",
    "Features",
    "PackedNetwork",
    "Registry",
    "SearchSpace",
    "StackedNetwork",
    "UnknownNameError",
    "get_space",
    "list_spaces",
]
