"""DisWOT's ResNet search space S1: CIFAR ResNets with 1, 3, 5 or 7 basic blocks in each of three stages."""

from spaces._lazy import lazy_exports

from ._cost import network_cost, uniform_blocks
from ._space import ARCHS, DATASET_CLASSES, DEPTHS, NUM_ARCHS, PARAMS, Depths, ResNetS1Space, parse_depths

# The networks need torch: imported on first use.
__getattr__, __dir__ = lazy_exports(__name__, {"BasicBlock": "._network", "CifarResNet": "._network"})

__all__ = [
    "ARCHS",
    "DATASET_CLASSES",
    "DEPTHS",
    "NUM_ARCHS",
    "PARAMS",
    "BasicBlock",
    "CifarResNet",
    "Depths",
    "ResNetS1Space",
    "network_cost",
    "parse_depths",
    "uniform_blocks",
]
