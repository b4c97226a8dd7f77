"""DisWOT's ResNet search space S1: CIFAR ResNets with 1, 3, 5 or 7 basic blocks in each of three stages."""

from ._network import BasicBlock, CifarResNet, network_cost, uniform_blocks
from ._space import ARCHS, DATASET_CLASSES, DEPTHS, NUM_ARCHS, PARAMS, Depths, ResNetS1Space, parse_depths

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
