"""Search spaces: one registry, one package per space.

Adding a space is one package that registers a factory with :data:`SPACES`::

    @SPACES.register("myspace")
    class MySpace(SearchSpace): ...

and one import line below. A space's module imports torch (and Optuna) only where it builds networks
(or distributions), so that listing and describing architectures stays cheap.
"""

from ._base import ArchInfo, Cost, PackedNetwork, SearchSpace, StackedNetwork
from ._catalog import SPACES
from ._lazy import lazy_exports
from ._registry import Registry, UnknownNameError

# The network contract needs torch: imported on first use.
__getattr__, __dir__ = lazy_exports(__name__, {"FeatureNetwork": "._features", "Features": "._features"})


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
