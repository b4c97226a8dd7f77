"""What several proxy families do to a network: pick its weight layers, seed local generators, check results."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spaces import FeatureNetwork

from ._base import ProxyError, ProxyInputs

#: The layers whose weights the zero-cost literature scores (zero-cost-nas's ``get_layer_metric_array``).
WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def weight_layers(net: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """Convolutions and linear layers in module order."""
    return [m for m in net.modules() if isinstance(m, WEIGHT_LAYERS)]


def layer_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in weight_layers(net)]


def weight_grads(loss: torch.Tensor, weights: list[torch.Tensor], **kwargs) -> list[torch.Tensor]:
    """Gradients of ``loss`` w.r.t. ``weights``; a weight the loss does not reach (a dead branch) gets zeros,
    as zero-cost-nas counts it."""
    grads = torch.autograd.grad(loss, weights, allow_unused=True, **kwargs)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]


def cross_entropy(net: nn.Module, inputs: ProxyInputs) -> torch.Tensor:
    """Mean cross-entropy of the network on the batch."""
    return F.cross_entropy(net(inputs.images), inputs.labels)


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A private generator, so a proxy's randomness never touches (or depends on) the global RNG."""
    return torch.Generator(device=device).manual_seed(seed)


def gaussian_init_(net: nn.Module, gen: torch.Generator) -> None:
    """N(0, 1) convolution and linear weights, zero biases, BatchNorm weight 1 and bias 0 (Zen-NAS, DisWOT)."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, WEIGHT_LAYERS):
                module.weight.normal_(0.0, 1.0, generator=gen)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, _BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def without_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose BatchNorm layers are identities (zero-cost-nas's ``bn=False`` copy)."""
    net = copy.deepcopy(net)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, name, nn.Identity())
    return net


def require_teacher(inputs: ProxyInputs, proxy: str) -> FeatureNetwork:
    if inputs.teacher is None:
        raise ProxyError(f"proxy {proxy!r} needs a teacher network; pass one (e.g. --teacher resnet56)")
    return inputs.teacher


def finite(value: float | torch.Tensor, what: str) -> float:
    """``value`` as a float; ProxyError naming ``what`` when it is NaN or infinite."""
    value = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if not math.isfinite(value):
        raise ProxyError(f"{what} is {value}")
    return value
