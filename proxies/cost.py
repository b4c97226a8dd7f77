"""Cost proxies: parameter count and FLOPs, the baselines every zero-cost proxy must beat."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from spaces import FeatureNetwork, SearchSpace

from ._base import Proxy, ProxyInputs
from ._registry import register_proxy


@register_proxy("params")
class Params(Proxy):
    description = "number of trainable parameters"
    needs_data = False

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return float(sum(p.numel() for p in student.parameters() if p.requires_grad))

    def score_architecture(self, space: SearchSpace, arch: Any, *, dataset: str, seed: int) -> float:
        # Every space's cost is its builder's exact parameter count (each space's tests check it).
        return float(space.cost_on(arch, dataset).params)


@register_proxy("flops")
class Flops(Proxy):
    description = "FLOPs of one image (torch FlopCounterMode: 2 per multiply-add)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            student(inputs.images[:1])
        return float(counter.get_total_flops())

    def score_architecture(self, space: SearchSpace, arch: Any, *, dataset: str, seed: int) -> float:
        # Every space's cost on a dataset is what FlopCounterMode counts on one of its inputs (tested per space).
        return float(space.cost_on(arch, dataset).flops)
