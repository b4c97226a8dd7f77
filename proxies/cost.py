"""Cost proxies: parameter count and FLOPs, the baselines every zero-cost proxy must beat."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from spaces import FeatureNetwork

from ._base import Proxy, ProxyInputs
from ._registry import register_proxy


@register_proxy("params")
class Params(Proxy):
    description = "number of trainable parameters"
    needs_data = False

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return float(sum(p.numel() for p in student.parameters() if p.requires_grad))


@register_proxy("flops")
class Flops(Proxy):
    description = "FLOPs of one image (torch FlopCounterMode: 2 per multiply-add)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            student(inputs.images[:1])
        return float(counter.get_total_flops())
