"""DisWOT's ResNet space S1 (Dong et al., CVPR 2023) as a :class:`~spaces.SearchSpace`.

A CIFAR ResNet-20-like network whose three stages each hold 1, 3, 5 or 7 basic blocks: 4^3 = 64
architectures, each named by its three block counts as a string (``"357"``: 3, 5 and 7 blocks).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from spaces._base import Cost, SearchSpace
from spaces._catalog import SPACES

from ._cost import network_cost

if TYPE_CHECKING:
    import optuna

    from ._network import CifarResNet

#: The block counts a stage may have.
DEPTHS = (1, 3, 5, 7)
#: Optuna parameter names, one per stage.
PARAMS = ("stage1", "stage2", "stage3")
#: CIFAR-100 first: the dataset of DisWOT's ground truth for S1, and so the space's default dataset.
DATASET_CLASSES = {"cifar100": 100, "cifar10": 10}


class Depths(NamedTuple):
    """The number of basic blocks in each of the three stages."""

    stage1: int
    stage2: int
    stage3: int

    def __str__(self) -> str:
        return f"{self.stage1}{self.stage2}{self.stage3}"


#: Every architecture in the canonical order: lexicographic over (stage1, stage2, stage3), so index
#: 0 is ``111``, index 1 is ``113`` and index 63 is ``777`` (the order of DisWOT's ground-truth file).
ARCHS = tuple(Depths(*d) for d in itertools.product(DEPTHS, repeat=3))
NUM_ARCHS = len(ARCHS)
_INDEX = {arch: i for i, arch in enumerate(ARCHS)}


def _check_depth(value: Any, what: str) -> int:
    if isinstance(value, bool) or value not in DEPTHS:
        raise ValueError(f"{what} must be a block count in {', '.join(map(str, DEPTHS))}, got {value!r}")
    return int(value)


def parse_depths(text: str) -> Depths:
    """``"357"`` -> ``Depths(3, 5, 7)``; ValueError naming the problem and the valid choices."""
    raw = str(text).strip()
    if len(raw) != 3 or not raw.isdigit():
        raise ValueError(
            f"a resnet_s1 architecture is three digits, the block counts of the three stages, each one of "
            f"{', '.join(map(str, DEPTHS))} (e.g. '357'), got {text!r}"
        )
    return Depths(*(_check_depth(int(ch), f"stage {i + 1} of {raw!r}") for i, ch in enumerate(raw)))


@SPACES.register("resnet_s1")
class ResNetS1Space(SearchSpace[Depths]):
    """64 CIFAR ResNets (16/32/64 channels) with 1, 3, 5 or 7 basic blocks in each stage; arch ``"357"``."""

    name = "resnet_s1"
    num_classes = DATASET_CLASSES

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        import optuna

        return {name: optuna.distributions.CategoricalDistribution(DEPTHS) for name in PARAMS}

    def from_params(self, params: Mapping[str, Any]) -> Depths:
        missing = [name for name in PARAMS if name not in params]
        if missing:
            raise ValueError(f"resnet_s1 parameters lack {', '.join(missing)}")
        return Depths(*(_check_depth(params[name], f"parameter {name}") for name in PARAMS))

    def to_params(self, arch: Depths) -> dict[str, Any]:
        return dict(zip(PARAMS, arch))

    def parse(self, text: str) -> Depths:
        return parse_depths(text)

    def to_str(self, arch: Depths) -> str:
        return str(Depths(*arch))

    def build(self, arch: Depths, num_classes: int) -> CifarResNet:
        from ._network import CifarResNet

        return CifarResNet(blocks=tuple(arch), num_classes=num_classes)

    def cost(self, arch: Depths, num_classes: int) -> Cost:
        return network_cost(tuple(arch), num_classes)

    def __len__(self) -> int:
        return NUM_ARCHS

    def index(self, arch: Depths) -> int:
        try:
            return _INDEX[Depths(*arch)]
        except (KeyError, TypeError):
            raise ValueError(f"{arch!r} is not a resnet_s1 architecture") from None

    def arch_at(self, index: int) -> Depths:
        if not 0 <= index < NUM_ARCHS:
            raise ValueError(f"resnet_s1 index {index} is out of range 0..{NUM_ARCHS - 1}")
        return ARCHS[index]

    def unique(self, arch: Depths) -> str:
        # Different block counts never compute the same function: each architecture is its own class.
        return self.to_str(arch)

    def is_connected(self, arch: Depths) -> bool:
        return True
