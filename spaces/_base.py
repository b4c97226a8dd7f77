"""Contracts shared by every search space; the features its networks expose are in ``_features``.

Nothing here imports torch or Optuna, so that listing and describing spaces stays cheap.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn

    from ._features import FeatureNetwork, Features

ArchT = TypeVar("ArchT")


class StackedNetwork(Protocol):
    """K students evaluated together: features stacked on a leading student axis, and each one's classifier."""

    k: int
    classifier: torch.Tensor  # K x classes x C, every student's classifier weight
    classifier_bias: torch.Tensor  # K x classes

    def forward_features(self, images: torch.Tensor) -> Any: ...

    def classifier_of(self, student: int) -> nn.Linear: ...


class PackedNetwork(Protocol):
    """Several networks trained as one module: its parameters are theirs, packed, and the gradient of a sum
    of per-network losses is each network's own gradient."""

    def forward_features(self, images: torch.Tensor) -> list[Features]: ...

    def unpack(self) -> list[FeatureNetwork]:
        """The networks, their weights (and BatchNorm statistics) set from the packed module."""
        ...


@dataclass(frozen=True)
class Cost:
    """Size of one network: parameters (count) and FLOPs for one input image (multiply-add = 2)."""

    params: int
    flops: int


@dataclass(frozen=True)
class ArchInfo:
    """Everything a space knows about one architecture, for display and for trial attributes."""

    index: int | None
    arch: str
    unique: str | None
    connected: bool
    cost: Mapping[str, Cost] = field(default_factory=dict)


class SearchSpace(abc.ABC, Generic[ArchT]):
    """A space of architectures with an Optuna search space and a network builder.

    Implementations convert between their native architecture value (``ArchT``), its canonical
    string, Optuna parameters and (where the space is finite) an index.
    """

    name: str
    #: Classifier widths of the datasets this space has ground truth for.
    num_classes: Mapping[str, int]

    @abc.abstractmethod
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The Optuna distributions of one architecture, keyed by parameter name."""

    @abc.abstractmethod
    def from_params(self, params: Mapping[str, Any]) -> ArchT:
        """The architecture that a trial's parameters describe."""

    @abc.abstractmethod
    def to_params(self, arch: ArchT) -> dict[str, Any]:
        """The Optuna parameters of an architecture (inverse of :meth:`from_params`)."""

    @abc.abstractmethod
    def parse(self, text: str) -> ArchT:
        """An architecture from user text (an index or a canonical string); ValueError if malformed."""

    @abc.abstractmethod
    def to_str(self, arch: ArchT) -> str:
        """The canonical string of an architecture."""

    @abc.abstractmethod
    def build(self, arch: ArchT, num_classes: int) -> FeatureNetwork:
        """A freshly initialised network (PyTorch's default initialisation)."""

    @abc.abstractmethod
    def cost(self, arch: ArchT, num_classes: int) -> Cost:
        """Parameter count and FLOPs of the network for a 32x32 (or the space's) input."""

    def cost_on(self, arch: ArchT, dataset: str) -> Cost:
        """Parameter count and FLOPs on ``dataset``: its classifier width and its input size (a space whose
        datasets differ in input size says so here)."""
        return self.cost(arch, self.num_classes[dataset])

    def __len__(self) -> int:
        raise TypeError(f"space {self.name!r} is not finite")

    def index(self, arch: ArchT) -> int:
        """Position of ``arch`` in the space's canonical enumeration."""
        raise TypeError(f"space {self.name!r} has no index")

    def arch_at(self, index: int) -> ArchT:
        raise TypeError(f"space {self.name!r} has no index")

    def __iter__(self) -> Iterator[ArchT]:
        return (self.arch_at(i) for i in range(len(self)))

    def unique(self, arch: ArchT) -> str | None:
        """A key shared by all architectures that compute the same function (None if unknown)."""
        return None

    def is_connected(self, arch: ArchT) -> bool:
        """Whether the input reaches the output (a disconnected network outputs a constant)."""
        return True

    def invalid_reason(self, arch: ArchT) -> str | None:
        """None for an architecture that is a valid network; otherwise why it is not.

        Searches skip invalid architectures (pruned with this reason, without scoring) unless asked to keep
        them, and correlation tables report all and valid architectures. By default a network is valid when
        its input reaches its output.
        """
        if not self.is_connected(arch):
            return "invalid network: the input never reaches the output (it computes a constant)"
        return None

    def build_seeded(
        self, arch: ArchT, num_classes: int, *, seed: int, init: str, device: torch.device
    ) -> FeatureNetwork | None:
        """A network whose weights are drawn on ``device`` by its own generator seeded with ``seed``, under the
        initialisation scheme ``init``; None where the space has no such builder (or cannot follow ``init``),
        and the caller then seeds the global generator, builds and initialises.

        Equal seeds give equal networks on one device type; :meth:`stacked` must give its students exactly
        these weights.
        """
        return None

    def stacked(
        self, archs: Sequence[ArchT], seeds: Sequence[int], num_classes: int, *, init: str, device: torch.device
    ) -> StackedNetwork | None:
        """Many seeded students evaluated in one pass, or None where the space has no such implementation.

        Student ``i`` must have exactly the weights that :meth:`build_seeded` gives ``seeds[i]`` on ``device``;
        None also when ``init`` cannot be reproduced.
        """
        return None

    def packed(self, networks: Sequence[FeatureNetwork]) -> PackedNetwork | None:
        """Networks this space built, packed into one module that trains them together, or None where the
        space has no such implementation (trainers then step through the networks one by one)."""
        return None

    def input_size(self) -> Sequence[int]:
        """Shape of one input image, channels first."""
        return (3, 32, 32)

    def info(self, arch: ArchT) -> ArchInfo:
        try:
            index: int | None = self.index(arch)
        except TypeError:
            index = None
        return ArchInfo(
            index=index,
            arch=self.to_str(arch),
            unique=self.unique(arch),
            connected=self.is_connected(arch),
            cost={dataset: self.cost_on(arch, dataset) for dataset in self.num_classes},
        )
