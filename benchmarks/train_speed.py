"""Training throughput: a plain PyTorch DataLoader loop against the suite's trainer, one student and packed.

    python benchmarks/train_speed.py --device cuda --images 50000 --students 8 --amp --channels-last

Every figure comes from this run on this device: seconds per epoch of ``--images`` training images (and
that extrapolated to CIFAR-10's 50,000) for

- the baseline: ``torch.utils.data.DataLoader`` over the decoded images with torchvision's RandomCrop,
  RandomHorizontalFlip, ToTensor and Normalize, and a textbook SGD loop;
- the trainer with one student (data and augmentation on the device);
- the trainer with ``--students`` NAS-Bench-201 students packed into one module, reported as
  student-epochs per minute and as a ratio to the one-student trainer and to the baseline;
- ResNet-56 (the default teacher), baseline against the trainer.

Each configuration trains ``--epochs`` epochs after one warm-up epoch that is not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision import transforms

from bench.data import DATASETS, load_split
from bench.distill import DeviceImages, Recipe, train
from bench.distill._run import seeded_students
from bench.teachers import CifarResNet
from spaces import get_space

#: The best CIFAR-10 cell of NAS-Bench-201 (what the issue's 9 s/epoch on an H200 was measured with),
#: and a seeded sample of others to pack beside it.
BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Images(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def dataloader_epoch_seconds(net: torch.nn.Module, args, device: torch.device) -> float:
    """Seconds per epoch of the textbook loop (the last of ``--epochs`` timed epochs, after a warm-up)."""
    arrays = load_split("cifar10", "train")
    index = np.random.default_rng(0).choice(len(arrays), args.images, replace=False)
    spec = DATASETS["cifar10"]
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(spec.mean, spec.std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        _Images(arrays.images[index], arrays.labels[index], transform),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    net = net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    times = []
    for _ in range(args.epochs + 1):
        _sync(device)
        tic = time.perf_counter()
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            loss = F.cross_entropy(net(images), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - tic)
    return float(np.mean(times[1:]))


def trainer_epoch_seconds(nets: list, args, device: torch.device, space: str | None) -> float:
    """Seconds per training epoch of the suite's trainer (its evaluation excluded), warm-up epoch not timed."""
    recipe = Recipe(epochs=args.epochs + 1, batch_size=args.batch_size, train_images=args.images, test_images=100)
    train_data = DeviceImages.load("cifar10", "train", device=device, limit=args.images)
    test_data = DeviceImages.load("cifar10", "test", device=device, limit=100)
    result = train(
        nets,
        recipe,
        train_data=train_data,
        test_data=test_data,
        pack=get_space(space).packed if space else None,
        amp=args.amp,
        channels_last=args.channels_last,
    )
    return float(np.mean([log.train_seconds for log in result.history[1:]]))


class _OperatorCount(TorchDispatchMode):
    """Counts the ATen operators a block of code dispatches: on a GPU each is at least one kernel launch."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def operators_per_step(nets: list, packed: bool) -> int:
    """ATen operators of one training step (forward, loss, backward, SGD step) of ``nets`` on 16 images."""
    images, labels = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    group = get_space("nb201").packed(nets) if packed else torch.nn.ModuleList(nets)
    forward = group.forward_features if packed else lambda x: [n.forward_features(x) for n in group]
    opt = torch.optim.SGD(group.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for counting in (False, True):  # the first step creates the momentum buffers
        with _OperatorCount() if counting else contextlib.nullcontext() as count:
            loss = sum(F.cross_entropy(f.logits, labels) for f in forward(images))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return count.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--students", type=int, default=4, help="NAS-Bench-201 students packed together")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes of the baseline")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA) for the trainer")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--skip-resnet", action="store_true", help="leave ResNet-56 out")
    parser.add_argument("--operators-only", action="store_true", help="only count operators per training step")
    args = parser.parse_args()
    device = torch.device(args.device)
    space = get_space("nb201")
    recipe = Recipe(train_images=args.images)
    rng = np.random.default_rng(0)
    others = [space.to_str(space.arch_at(int(i))) for i in rng.choice(len(space), args.students - 1, replace=False)]
    group = [BEST_CELL, *others]

    if not args.operators_only:
        timings(args, device, recipe, group)
    operator_counts(args, space, recipe, rng)


def timings(args, device: torch.device, recipe: Recipe, group: list[str]) -> None:
    rows = []
    base = dataloader_epoch_seconds(seeded_students("nb201", [BEST_CELL], recipe)[0], args, device)
    rows.append(("NB201 best cell", "DataLoader loop", 1, base))
    one = trainer_epoch_seconds(seeded_students("nb201", [BEST_CELL], recipe), args, device, None)
    rows.append(("NB201 best cell", "trainer", 1, one))
    many = trainer_epoch_seconds(seeded_students("nb201", group, recipe), args, device, "nb201")
    rows.append((f"NB201, {args.students} packed", "trainer", args.students, many))
    alone = trainer_epoch_seconds(seeded_students("nb201", group, recipe), args, device, None)
    rows.append((f"NB201, {args.students} one by one", "trainer", args.students, alone))
    if not args.skip_resnet:
        torch.manual_seed(0)
        rows.append(("ResNet-56", "DataLoader loop", 1, dataloader_epoch_seconds(CifarResNet(56, 10), args, device)))
        torch.manual_seed(0)
        rows.append(("ResNet-56", "trainer", 1, trainer_epoch_seconds([CifarResNet(56, 10)], args, device, None)))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    table = Table(
        "network",
        "loop",
        "students",
        f"s/epoch ({args.images} images)",
        "s/epoch (50k, extrapolated)",
        "student-epochs/min",
        "vs DataLoader loop (1 student)",
        title=f"Training throughput on {name}, batch {args.batch_size}, amp={args.amp}, "
        f"channels_last={args.channels_last}",
    )
    baselines = {"NB201": base, "ResNet-56": rows[-2][3] if not args.skip_resnet else None}
    for network, loop, k, seconds in rows:
        per_minute = 60.0 * k / seconds
        reference = baselines["ResNet-56" if network.startswith("ResNet") else "NB201"]
        ratio = per_minute / (60.0 / reference)
        table.add_row(
            network, loop, str(k), f"{seconds:.2f}", f"{seconds * 50000 / args.images:.1f}", f"{per_minute:.2f}",
            f"{ratio:.2f}x",
        )  # fmt: skip
    Console(width=200).print(table)
    print(f"packed vs one-student trainer, student-epochs per minute: {(args.students / many) / (1 / one):.2f}x")
    print(f"packed vs {args.students} one by one in the same loop: {alone / many:.2f}x")


def operator_counts(args, space, recipe: Recipe, rng: np.random.Generator) -> None:
    # What a launch-bound GPU loop pays for: operators (kernel launches, at least) per training step.
    single = operators_per_step(seeded_students("nb201", [BEST_CELL], recipe), packed=False)
    ops = Table("students", "packed", "one by one", "packed per student", "fewer per student-step than 1 alone",
                title=f"ATen operators per training step (one student alone: {single})")  # fmt: skip
    for k in sorted({4, 8, 16, 32, args.students}):
        archs = [
            BEST_CELL,
            *(space.to_str(space.arch_at(int(i))) for i in rng.choice(len(space), k - 1, replace=False)),
        ]
        packed_ops = operators_per_step(seeded_students("nb201", archs, recipe), packed=True)
        alone_ops = operators_per_step(seeded_students("nb201", archs, recipe), packed=False)
        ops.add_row(str(k), str(packed_ops), str(alone_ops), f"{packed_ops / k:.0f}", f"{single * k / packed_ops:.2f}x")
    Console(width=200).print(ops)


if __name__ == "__main__":
    main()
