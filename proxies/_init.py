"""Initialisation schemes for students and teachers, applied in place with a seeded generator."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spaces import Registry

INITS: Registry[None] = Registry("initialisation")


@INITS.register("default")
def default_init(net: nn.Module) -> None:
    """PyTorch's own initialisation, as the modules were constructed."""


@INITS.register("diswot")
def diswot_init(net: nn.Module) -> None:
    """DisWOT's reference code: conv and linear weights N(0, 1), zero biases, BatchNorm weight 1 and bias 0."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(0.0, 1.0)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def initialise(net: nn.Module, scheme: str) -> nn.Module:
    """Apply the scheme ``scheme`` to ``net`` in place (the caller seeds the RNG) and return it."""
    fn: Callable[[nn.Module], None] = INITS.factory(scheme)
    fn(net)
    return net
