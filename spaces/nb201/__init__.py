"""NAS-Bench-201 (Dong & Yang, ICLR 2020): the topology space of 15,625 cells."""

from spaces._lazy import lazy_exports

from ._cost import network_cost
from ._genotype import EDGES, NUM_ARCHS, OPS, Genotype, is_connected, parse_arch_str, to_arch_str, unique_str
from ._space import DATASET_CLASSES, NB201Space

__getattr__, __dir__ = lazy_exports(__name__, {"NB201Network": "._network"})  # needs torch: on first use

__all__ = [
    "DATASET_CLASSES",
    "EDGES",
    "NUM_ARCHS",
    "OPS",
    "Genotype",
    "NB201Network",
    "NB201Space",
    "is_connected",
    "network_cost",
    "parse_arch_str",
    "to_arch_str",
    "unique_str",
]
