"""Gradient-based zero-cost proxies, as defined by zero-cost-nas (Abdelfattah et al., ICLR 2021) and
NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022), plus ZiCo (Li et al., ICLR 2023).

Every score is over the weights of the convolution and linear layers (the reference's
``get_layer_metric_array``), summed over layers and elements into one float, on one batch with the
mean cross-entropy loss. The student is in training mode (BatchNorm on batch statistics), as the
reference's networks are. A weight that the loss does not reach (a dead branch of a cell) counts zero.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces import FeatureNetwork

from ._base import Proxy, ProxyError, ProxyInputs
from ._nets import cross_entropy, finite, layer_weights, weight_grads, weight_layers, without_batchnorm
from ._registry import register_proxy


@register_proxy("grad_norm")
class GradNorm(Proxy):
    description = "sum over layers of the L2 norm of the loss gradient (Abdelfattah et al. 2021)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        grads = weight_grads(cross_entropy(student, inputs), layer_weights(student))
        return finite(sum(g.norm() for g in grads), "grad_norm")


def weight_saliency(student: FeatureNetwork, inputs: ProxyInputs) -> list[torch.Tensor]:
    """``dL/dw * w`` of every weight layer: the per-weight saliency SNIP and plain both sum."""
    weights = layer_weights(student)
    grads = weight_grads(cross_entropy(student, inputs), weights)
    return [g * w for g, w in zip(grads, weights)]


@register_proxy("snip")
class Snip(Proxy):
    description = "SNIP saliency sum |dL/dw * w| (Lee et al. 2019)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return finite(sum(s.abs().sum() for s in weight_saliency(student, inputs)), "snip")


@register_proxy("plain")
class Plain(Proxy):
    description = "sum of dL/dw * w (Mozer & Smolensky 1989; NAS-Bench-Suite-Zero)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return finite(sum(s.sum() for s in weight_saliency(student, inputs)), "plain")


@register_proxy("grasp")
class Grasp(Proxy):
    """GraSP (Wang et al. 2020) as zero-cost-nas scores it: ``sum(-w * Hg)`` with ``g`` the loss gradient
    and ``H`` the Hessian, through one Hessian-gradient product (temperature 1, one iteration).

    zero-cost-nas flips the pruning paper's sign because accuracy correlates with ``-w * Hg``; so does this.
    """

    description = "GraSP: sum of -w * (Hessian x gradient) (Wang et al. 2020; zero-cost-nas's sign)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        weights = layer_weights(student)
        # The reference runs a second forward pass on the same batch for the Hessian-vector product; in
        # training mode it builds the same graph, so one differentiable gradient serves both roles.
        grads = weight_grads(cross_entropy(student, inputs), weights, create_graph=True)
        z = sum((g.detach() * g).sum() for g in grads if g.requires_grad)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            raise ProxyError("the loss reaches no weight: the gradient has no Hessian")
        hessian_grad = weight_grads(z, weights)
        return finite(sum((-w.detach() * hg).sum() for w, hg in zip(weights, hessian_grad)), "grasp")


@register_proxy("fisher")
class Fisher(Proxy):
    """Fisher information (Theis et al. 2018; Turner et al. 2020) as zero-cost-nas and NASLib score it.

    For the output ``a`` of every convolution and linear layer, each channel's value is
    ``0.5 * mean_n (sum_hw a * dL/da)^2``; the reference then *broadcasts* each channel's value to every
    weight of that channel (a tensor of the weight's ``shape[1:]`` filled with it) before everything is
    summed, so a channel counts ``in_channels * kh * kw`` times. (Version 1 summed the channel values
    without that weighting.)
    """

    description = "Fisher information of layer outputs, per weight as zero-cost-nas sums it (Turner et al. 2020)"
    needs_labels = True
    version = 2

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        outputs: list[tuple[torch.Tensor, int]] = []

        def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if out.requires_grad:
                outputs.append((out, module.weight[0].numel()))  # weights per output channel

        handles = [layer.register_forward_hook(keep) for layer in weight_layers(student)]
        try:
            loss = cross_entropy(student, inputs)
        finally:
            for handle in handles:
                handle.remove()
        grads = torch.autograd.grad(loss, [out for out, _ in outputs], allow_unused=True)
        total = torch.zeros((), dtype=torch.float64, device=inputs.device)
        for (act, per_channel_weights), grad in zip(outputs, grads):
            if grad is None:
                continue
            product = (act.detach() * grad).double()
            per_channel = product.sum(dim=tuple(range(2, product.dim()))) if product.dim() > 2 else product
            total = total + per_channel.pow(2).mean(0).mul(0.5).sum() * per_channel_weights
        return finite(total, "fisher")


@register_proxy("synflow")
class Synflow(Proxy):
    """SynFlow (Tanaka et al. 2020) as zero-cost-nas scores NAS-Bench-201: a copy of the student without
    BatchNorm (the reference's ``bn=False``), every parameter replaced by its absolute value, one all-ones
    image, ``R = sum(output)``, score ``sum |w * dR/dw|``.

    In float64: the products of absolute weights through a 15-cell network overflow float32's range
    for many architectures. The score depends on the weights only, never on the data.
    """

    description = "SynFlow: sum |w * dR/dw|, R the output of |weights| on an all-ones image (Tanaka et al. 2020)"
    needs_data = False

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        net = without_batchnorm(student).double()
        with torch.no_grad():
            for tensor in net.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        weights = layer_weights(net)
        ones = torch.ones((1, *inputs.images.shape[1:]), dtype=torch.float64, device=inputs.device)
        grads = weight_grads(net(ones).sum(), weights)
        return finite(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)), "synflow")


@register_proxy("zico")
class ZiCo(Proxy):
    """ZiCo (Li et al., ICLR 2023): ``sum_layers log sum_w E[|g_w|] / std(g_w)`` over the gradients of
    the batch's two halves, as NAS-Bench-Suite-Zero computes it from one batch (the official code's
    ``caculate_zico``: weights whose gradient does not vary are left out, a layer with no such weight
    adds nothing)."""

    description = "ZiCo: sum over layers of log(sum of mean |grad| / std grad) over two half-batches (Li et al. 2023)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        n = len(inputs.images)
        if n < 2:
            raise ProxyError(f"zico needs a batch of at least 2 images to split in two, got {n}")
        weights = layer_weights(student)
        halves = []
        for part in (slice(0, n // 2), slice(n // 2, n)):
            loss = torch.nn.functional.cross_entropy(student(inputs.images[part]), inputs.labels[part])
            halves.append([g.detach().double() for g in weight_grads(loss, weights)])
        total = torch.zeros((), dtype=torch.float64, device=inputs.device)
        for g1, g2 in zip(*halves):
            stacked = torch.stack([g1.flatten(), g2.flatten()])
            std = stacked.std(dim=0, unbiased=False)
            varying = std != 0
            ratio_sum = (stacked.abs().mean(dim=0)[varying] / std[varying]).sum()
            if ratio_sum != 0:
                total = total + ratio_sum.log()
        return finite(total, "zico")
