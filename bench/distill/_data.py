"""Training data held on the training device, augmented there: no DataLoader, no host-to-device copies.

CIFAR fits in a few hundred MB of GPU memory as uint8, so every epoch is a seeded permutation of indices,
and each batch is cropped, flipped and normalised on the device in a handful of kernels. On a GPU this
removes the input pipeline from the loop; on a CPU it is still cheaper than a per-image Python transform.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..data import check_dataset, load_split

CROP_PADDING = 4


class DeviceImages:
    """One split of a dataset as uint8 ``(N, 3, H, W)`` and int64 labels on ``device``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, dataset: str) -> None:
        spec = check_dataset(dataset)
        self.images = images
        self.labels = labels
        self.dataset = dataset
        self.mean = torch.tensor(spec.mean, device=images.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(spec.std, device=images.device).view(1, 3, 1, 1) * 255

    @classmethod
    def load(
        cls,
        dataset: str,
        split: str,
        *,
        device: torch.device | str = "cpu",
        limit: int = 0,
        seed: int = 0,
        root: str | os.PathLike | None = None,
    ) -> DeviceImages:
        """The split, or ``limit`` > 0 images of it drawn uniformly: by ``seed`` from the training split, by
        seed 0 from the test split (so every run evaluates on the same images; files are sorted by class, so
        the first images would all be one class)."""
        arrays = load_split(dataset, split, root=root)
        index = np.arange(len(arrays))
        if 0 < limit < len(arrays):
            draw = np.random.default_rng(seed if split == "train" else 0)
            index = np.sort(draw.choice(len(arrays), limit, replace=False))
        images = torch.from_numpy(np.ascontiguousarray(arrays.images[index])).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(arrays.labels[index]).long()
        return cls(images.to(device), labels.to(device), dataset)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop with 4-pixel zero padding and random horizontal flip, per image."""
        n, _, h, w = images.shape
        padded = F.pad(images, (CROP_PADDING,) * 4)
        dy = torch.randint(0, 2 * CROP_PADDING + 1, (n, 1, 1), generator=generator, device=generator.device)
        dx = torch.randint(0, 2 * CROP_PADDING + 1, (n, 1, 1), generator=generator, device=generator.device)
        flip = torch.rand(n, 1, 1, generator=generator, device=generator.device) < 0.5
        dy, dx, flip = dy.to(images.device), dx.to(images.device), flip.to(images.device)
        rows = dy + torch.arange(h, device=images.device).view(1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, w)
        cols = torch.where(flip, w - 1 - cols, cols) + dx
        batch = torch.arange(n, device=images.device).view(n, 1, 1)
        # Advanced indexing gathers (n, h, w, channels); one permute back to channels-first.
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)

    def batches(
        self,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        augment: bool = False,
        drop_last: bool = False,
    ):
        """(normalised images, labels) batches; shuffled and augmented when a generator is given."""
        n = len(self)
        order = torch.randperm(n, generator=generator, device=generator.device) if generator is not None else None
        if order is not None:
            order = order.to(self.device)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            index = order[start : start + batch_size] if order is not None else slice(start, start + batch_size)
            images = self.images[index]
            if augment and generator is not None:
                images = self.augment(images, generator)
            yield self.normalise(images), self.labels[index]
