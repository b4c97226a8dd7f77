"""The NAS-Bench-201 network: stem, three stages of cells joined by residual reductions, classifier."""

from __future__ import annotations

import torch
from torch import nn

from spaces._features import FeatureNetwork, Features

from ._cost import C_STEM, CELLS_PER_STAGE, network_cost  # noqa: F401  (network_cost: re-exported)
from ._genotype import EDGES, Genotype
from ._ops import ResidualReduction, make_op


class Cell(nn.Module):
    """Four-node DAG; node j sums its incoming edges, the cell outputs node 3."""

    def __init__(self, genotype: Genotype, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self._incoming: list[list[tuple[int, str | None]]] = [[] for _ in range(4)]
        for e, ((src, dst), name) in enumerate(zip(EDGES, genotype.op_names)):
            op = make_op(name, channels)
            key = None if op is None else str(e)
            if op is not None:
                self.edges[key] = op
            self._incoming[dst].append((src, key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            terms = [self.edges[key](nodes[src]) for src, key in self._incoming[dst] if key is not None]
            # A node fed only by `none` edges is all zeros, as NAS-Bench-201's Zero op makes it.
            nodes.append(torch.stack(terms).sum(0) if len(terms) > 1 else terms[0] if terms else torch.zeros_like(x))
        return nodes[3]


class NB201Network(FeatureNetwork):
    def __init__(self, genotype: Genotype, num_classes: int, channels: int = C_STEM, cells: int = CELLS_PER_STAGE):
        super().__init__()
        self.genotype = genotype
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        stages: list[nn.Module] = []
        c = channels
        for stage in range(3):
            blocks: list[nn.Module] = []
            if stage > 0:
                blocks.append(ResidualReduction(c, 2 * c))
                c *= 2
            blocks.extend(Cell(genotype, c) for _ in range(cells))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> Features:
        out = self.stem(x)
        stage_maps = []
        for stage in self.stages:
            out = stage(out)
            stage_maps.append(out)
        pre_pool = self.lastact(out)
        embedding = self.global_pooling(pre_pool).flatten(1)
        return Features(stages=stage_maps, pre_pool=pre_pool, embedding=embedding, logits=self.classifier(embedding))
