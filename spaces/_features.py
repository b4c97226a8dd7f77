"""What one forward pass of a space's network exposes to the proxies, and the network class behind it."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Features:
    """What one forward pass of a student or teacher exposes to the proxies.

    ``stages`` holds the feature map at the end of each resolution stage, ``pre_pool`` the map
    that global pooling reduces (after the last activation), ``embedding`` the pooled vector fed
    to the classifier and ``logits`` the classifier's output.
    """

    stages: list[torch.Tensor]
    pre_pool: torch.Tensor
    embedding: torch.Tensor
    logits: torch.Tensor


class FeatureNetwork(nn.Module):
    """A classifier whose ``forward`` returns logits and ``forward_features`` returns :class:`Features`.

    Every network a space builds, and every teacher, derives from this class so that proxies can
    reach the classifier layer (``self.classifier``) and the intermediate features the same way.
    """

    classifier: nn.Linear

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> Features: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).logits
