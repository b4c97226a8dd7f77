"""Activation-based zero-cost proxies: what a forward pass of the untrained network does to its inputs."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spaces import FeatureNetwork

from ._base import Proxy, ProxyError, ProxyInputs
from ._nets import finite, gaussian_init_, generator
from ._registry import register_proxy


@register_proxy("nwot")
class NASWOT(Proxy):
    """NASWOT (Mellor et al., ICML 2021): ``log |det K|`` with ``K_ij`` the number of ReLU units on which
    images ``i`` and ``j`` agree (both active or both inactive), over every ReLU module of the network,
    as the official code hooks them."""

    description = "NASWOT: log|det| of the ReLU activation-pattern agreement kernel (Mellor et al. 2021)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        n = len(inputs.images)
        kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

        def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            nonlocal kernel
            # Per layer, products of 0/1 codes are integer counts well below float32's exact range.
            code = (args[0].detach().flatten(1) > 0).float()
            layer = code @ code.T + (1.0 - code) @ (1.0 - code).T
            kernel = kernel + layer.double()

        relus = [m for m in student.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ProxyError("nwot: the network has no ReLU module")
        handles = [m.register_forward_hook(count) for m in relus]
        try:
            with torch.no_grad():
                student(inputs.images)
        finally:
            for handle in handles:
                handle.remove()
        sign, logdet = torch.linalg.slogdet(kernel)
        if sign == 0:
            raise ProxyError("nwot: the activation-pattern kernel is singular (images share their activation patterns)")
        return finite(logdet, "nwot")


@register_proxy("zen")
class Zen(Proxy):
    """Zen-score (Lin et al., ICCV 2021), as its official code and NAS-Bench-Suite-Zero compute it.

    The network is re-initialised as Zen-NAS prescribes (Gaussian N(0, 1) weights, BatchNorm weight 1 and
    bias 0, fresh running statistics), fed Gaussian noise ``x`` and ``x + 0.01 e`` in training mode; the
    score is ``log E_n ||f(x) - f(x + 0.01 e)||_1`` of the pre-pooling map plus ``sum log sqrt(mean
    running_var)`` over the BatchNorm layers. The initialisation and the noise come from a generator
    seeded by the run's seed; the score does not read the data batch, only its shape.
    """

    description = "Zen-score: log pre-pool perturbation response + BN scaling, Gaussian init (Lin et al. 2021)"
    needs_data = False
    mixup_gamma = 1e-2

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        net = copy.deepcopy(student).train()
        gen = generator(inputs.seed, inputs.device)
        gaussian_init_(net, gen)
        for module in net.modules():
            if isinstance(module, _BatchNorm) and module.track_running_stats:
                module.reset_running_stats()
        shape = inputs.images.shape
        x = torch.randn(shape, generator=gen, device=inputs.device)
        noise = torch.randn(shape, generator=gen, device=inputs.device)
        with torch.no_grad():
            out = net.forward_features(x).pre_pool
            mixed = net.forward_features(x + self.mixup_gamma * noise).pre_pool
        response = (out - mixed).abs().flatten(1).sum(1).mean()
        if response <= 0:
            raise ProxyError("zen: the pre-pooling map does not respond to its input")
        log_bn = sum(
            torch.log(torch.sqrt(m.running_var.mean())) for m in net.modules() if isinstance(m, nn.BatchNorm2d)
        )
        return finite(torch.log(response) + log_bn, "zen")
