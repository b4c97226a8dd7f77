"""Training named architectures and teachers: seeded networks, cached device data, saved weights."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from proxies import initialise
from spaces import FeatureNetwork, get_space

from ..data import check_dataset
from ..files import load_torch
from ..scoring._scorer import network_seed
from ..teachers import TEACHERS, load_teacher
from ._data import DeviceImages
from ._recipe import Recipe
from ._trainer import TrainResult, _save_atomic, train


@functools.cache
def _device_split(dataset: str, split: str, limit: int, seed: int, device: str, root: str | None) -> DeviceImages:
    return DeviceImages.load(dataset, split, device=device, limit=limit, seed=seed, root=root)


def recipe_data(
    recipe: Recipe, device: str, root: str | os.PathLike | None = None
) -> tuple[DeviceImages, DeviceImages]:
    """The training and test images a recipe uses, on ``device`` (loaded once per process)."""
    root_ = str(root) if root is not None else None
    train_data = _device_split(recipe.dataset, "train", recipe.train_images, recipe.seed, device, root_)
    test_data = _device_split(recipe.dataset, "test", recipe.test_images, 0, device, root_)
    return train_data, test_data


def seeded_students(space: str, archs: Sequence[str], recipe: Recipe) -> list[FeatureNetwork]:
    """Each architecture built from a seed of its own (the run's seed and the architecture), so a student
    starts from the same weights whether trained alone or in any group."""
    search_space = get_space(space)
    classes = check_dataset(recipe.dataset).num_classes
    students = []
    for arch in archs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(network_seed(recipe.seed, arch, role="trained"))
            students.append(initialise(search_space.build(search_space.parse(arch), classes), recipe.init))
    return students


def teacher_checkpoint_info(path: str | os.PathLike) -> dict[str, object]:
    """What a file written by ``bench train-teacher`` says about itself: teacher, space, dataset, accuracy."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher checkpoint {path} does not exist (make one with bench train-teacher)")
    state = load_torch(path, "teacher checkpoint")
    if not isinstance(state, dict) or "teacher" not in state or "state_dict" not in state:
        raise ValueError(f"{path} is not a teacher file written by bench train-teacher (no 'teacher' entry)")
    return {k: v for k, v in state.items() if k != "state_dict"}


def distillation_teacher(recipe: Recipe, space: str, device: str) -> FeatureNetwork | None:
    """The recipe's trained teacher (evaluation mode), or None for vanilla training."""
    if not recipe.distils:
        return None
    classes = check_dataset(recipe.dataset).num_classes
    return load_teacher(
        recipe.teacher or "",
        space=space,
        dataset=recipe.dataset,
        num_classes=classes,
        seed=0,
        weights=recipe.teacher_weights,
        device=device,
    )


def train_architectures(
    space: str,
    archs: Sequence[str],
    recipe: Recipe,
    *,
    device: str = "cpu",
    data_root: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    pack: bool | None = None,
    amp: bool = False,
    channels_last: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[list[FeatureNetwork], TrainResult]:
    """Train ``archs`` of ``space`` together under ``recipe`` (see :func:`bench.distill.train`).

    ``pack`` None packs the students where that pays: on CUDA, where a small network's loop is bound by
    kernel launches. On a CPU, arithmetic bounds it and grouped convolutions measured slower than one
    convolution per student (docs/distillation.md).
    """
    if pack is None:
        pack = device.startswith("cuda")
    train_data, test_data = recipe_data(recipe, device, data_root)
    students = seeded_students(space, archs, recipe)
    result = train(
        students,
        recipe,
        train_data=train_data,
        test_data=test_data,
        teacher=distillation_teacher(recipe, space, device),
        pack=get_space(space).packed if pack else None,
        checkpoint=checkpoint,
        amp=amp,
        channels_last=channels_last,
        stop_after=stop_after,
        progress=progress,
    )
    return students, result


def _image_teacher(name: str, space: str, dataset: str, classes: int) -> FeatureNetwork:
    """The registered teacher ``name``, built for images; ValueError naming the ones that are, otherwise."""

    def build(teacher: str) -> FeatureNetwork | None:
        try:
            net = TEACHERS.factory(teacher)(space=space, dataset=dataset, num_classes=classes)
            with torch.no_grad():
                logits = net.eval()(torch.zeros(2, 3, 32, 32))
        except Exception:  # a teacher of another modality (text) fails here, whatever the error
            return None
        return net.train() if tuple(logits.shape) == (2, classes) else None

    TEACHERS.factory(name)  # an unknown name fails here, listing every teacher
    net = build(name)
    if net is None:
        trainable = [t for t in TEACHERS.names() if build(t) is not None]
        raise ValueError(f"teacher {name!r} is not an image classifier to train; choices: {', '.join(trainable)}")
    return net


def train_teacher(
    name: str,
    recipe: Recipe,
    out: str | os.PathLike,
    *,
    space: str = "nb201",
    device: str = "cpu",
    data_root: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    amp: bool = False,
    channels_last: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train the registered teacher ``name`` and write ``out``: its state dict with what made it, which
    :func:`bench.teachers.load_teacher` reads as trained weights."""
    classes = check_dataset(recipe.dataset).num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(network_seed(recipe.seed, name, role="teacher"))
        net = initialise(_image_teacher(name, space, recipe.dataset, classes), recipe.init)
    train_data, test_data = recipe_data(recipe, device, data_root)
    result = train(
        [net],
        recipe,
        train_data=train_data,
        test_data=test_data,
        checkpoint=checkpoint,
        amp=amp,
        channels_last=channels_last,
        stop_after=stop_after,
        progress=progress,
    )
    if result.diverged:
        raise ValueError(
            f"teacher {name}: {result.failures()[0]} (lr {recipe.lr:g}); nothing was written: lower --lr and train "
            "again"
        )
    if len(result.history) == recipe.epochs:
        _save_atomic(
            {
                "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
                "teacher": name,
                "space": space,
                "dataset": recipe.dataset,
                "test_acc": result.test_acc[0],
                "recipe": recipe.as_dict(),
                "recipe_hash": recipe.hash(),
            },
            Path(out),
        )
    return result
