"""The NAS-Bench-201 topology search space as a :class:`~spaces.SearchSpace`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spaces._base import Cost, SearchSpace
from spaces._catalog import SPACES

from . import _genotype as g
from ._cost import network_cost

if TYPE_CHECKING:
    import optuna

    from ._network import NB201Network

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: Image side of each dataset: ImageNet16-120's images are 16 x 16, so its networks cost a quarter of the
#: convolutions' FLOPs of CIFAR's (NAS-Bench-201 reports them so).
DATASET_RESOLUTION = {"cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}


def _param_name(edge: int) -> str:
    src, dst = g.EDGES[edge]
    return f"edge_{src}_{dst}"


@SPACES.register("nb201")
class NB201Space(SearchSpace[g.Genotype]):
    """15,625 cells of six edges and five ops, in a fixed 16-32-64 channel, 5-cells-per-stage network."""

    name = "nb201"
    num_classes = DATASET_CLASSES

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        import optuna

        return {_param_name(e): optuna.distributions.CategoricalDistribution(g.OPS) for e in range(len(g.EDGES))}

    def from_params(self, params: Mapping[str, Any]) -> g.Genotype:
        missing = [_param_name(e) for e in range(len(g.EDGES)) if _param_name(e) not in params]
        if missing:
            raise ValueError(f"NAS-Bench-201 parameters lack {', '.join(missing)}")
        return g.Genotype.from_op_names([params[_param_name(e)] for e in range(len(g.EDGES))])

    def to_params(self, arch: g.Genotype) -> dict[str, Any]:
        return {_param_name(e): name for e, name in enumerate(arch.op_names)}

    def parse(self, text: str) -> g.Genotype:
        text = text.strip()
        if text.lstrip("-").isdigit():
            return self.arch_at(int(text))
        if "~" in text or "|" in text:
            return g.parse_arch_str(text)
        raise ValueError(
            f"{text!r} is neither an index in 0..{len(self) - 1} nor an arch string like "
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        )

    def to_str(self, arch: g.Genotype) -> str:
        return g.to_arch_str(arch)

    def build(self, arch: g.Genotype, num_classes: int) -> NB201Network:
        from ._network import NB201Network

        return NB201Network(arch, num_classes)

    def cost(self, arch: g.Genotype, num_classes: int) -> Cost:
        return network_cost(arch, num_classes)

    def cost_on(self, arch: g.Genotype, dataset: str) -> Cost:
        return network_cost(arch, self.num_classes[dataset], resolution=DATASET_RESOLUTION[dataset])

    def build_seeded(self, arch, num_classes, *, seed, init, device):
        from ._weights import SCHEMES, build_seeded_network

        if init not in SCHEMES:
            return None
        return build_seeded_network(arch, num_classes, seed, init, device)

    def stacked(self, archs, seeds, num_classes, *, init, device):
        from ._stacked import StackedNB201
        from ._weights import SCHEMES, WeightLayout, draw_numbers

        if init not in SCHEMES:
            return None
        layout = WeightLayout(num_classes)
        return StackedNB201(archs, draw_numbers(seeds, layout, init, device), layout, init)

    def packed(self, networks):
        from ._packed import PackedNB201

        return PackedNB201(networks)

    def __len__(self) -> int:
        return g.NUM_ARCHS

    def index(self, arch: g.Genotype) -> int:
        return g.index_of(arch)

    def arch_at(self, index: int) -> g.Genotype:
        if not 0 <= index < g.NUM_ARCHS:
            raise ValueError(f"NAS-Bench-201 index {index} is out of range 0..{g.NUM_ARCHS - 1}")
        return g.official_order()[index]

    def unique(self, arch: g.Genotype) -> str:
        return g.unique_str(arch)

    def is_connected(self, arch: g.Genotype) -> bool:
        return g.is_connected(arch)
