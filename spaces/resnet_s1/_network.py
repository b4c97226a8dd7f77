"""CIFAR ResNets of basic blocks (He et al., CVPR 2016, Sec. 4.2) with any number of blocks per stage.

The uniform ResNet-(6n + 2) (ResNet-20, -56, -110) has n blocks in each of its three stages; DisWOT's
space S1 varies each stage's count independently.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spaces._features import FeatureNetwork, Features

from ._cost import WIDTHS, _check_blocks, network_cost, uniform_blocks  # noqa: F401  (re-exported)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut; a 1x1 convolution + BatchNorm shortcut where
    the shape changes (RepDistiller's CIFAR ResNets, which DisWOT's teachers and S1 students are)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(FeatureNetwork):
    """A CIFAR ResNet for 32x32 images: a 3x3 stem, three stages of basic blocks at 16, 32 and 64 channels
    (stride 2 between stages), global average pooling and a linear classifier.

    Give either ``depth`` (the uniform ResNet-(6n + 2): ``CifarResNet(56, 100)``) or ``blocks``, the
    number of blocks of each stage (``CifarResNet(blocks=(3, 5, 7), num_classes=100)``).
    ``depth`` is then ``2 + 2 * sum(blocks)``: the 3x3 convolutions plus the classifier.
    """

    def __init__(
        self,
        depth: int | None = None,
        num_classes: int | None = None,
        widths: tuple[int, int, int] = WIDTHS,
        *,
        blocks: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if (depth is None) == (blocks is None):
            raise ValueError("give a CIFAR ResNet either depth (6n + 2) or blocks (one count per stage), not both")
        if num_classes is None:
            raise ValueError("a CIFAR ResNet needs num_classes")
        blocks = uniform_blocks(depth) if depth is not None else _check_blocks(blocks, widths)
        self.blocks = tuple(blocks)
        self.depth = 2 + 2 * sum(self.blocks)
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=False)
        )
        stages = []
        c_in = widths[0]
        for index, (width, count) in enumerate(zip(widths, self.blocks)):
            stride = 1 if index == 0 else 2
            layers = [BasicBlock(c_in if b == 0 else width, width, stride if b == 0 else 1) for b in range(count)]
            stages.append(nn.Sequential(*layers))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)

    @classmethod
    def uniform(cls, depth: int, num_classes: int, widths: tuple[int, int, int] = WIDTHS) -> CifarResNet:
        """The uniform ResNet-``depth`` (depth 6n + 2: n blocks a stage)."""
        return cls(depth, num_classes, widths)

    def forward_features(self, x: torch.Tensor) -> Features:
        out = self.stem(x)
        maps = []
        for stage in self.stages:
            out = stage(out)
            maps.append(out)
        # The last block ends in a ReLU, so its output is what pooling reduces.
        embedding = self.global_pooling(out).flatten(1)
        return Features(stages=maps, pre_pool=out, embedding=embedding, logits=self.classifier(embedding))
