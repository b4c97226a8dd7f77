"""Image data: CIFAR-10/100 and ImageNet16-120 from the layouts users have, and seeded proxy batches.

One data root (``--data-root`` or ``$BENCH_DATA_ROOT``, else ``./data``) holds, for each dataset,
one of the layouts below; the first that exists is used:

- torchvision's folders (``cifar-10-batches-py``, ``cifar-100-python``), downloaded there on request;
- an image-folder tree ``<root>/<dataset>/{train,test}/<class>/<image>``;
- a tarball of such a tree ``<root>/<dataset>/*.tar.gz`` (e.g. ``cifar10_jpg_q75.tar.gz``);
- for ImageNet16-120, the official batches ``<root>/ImageNet16/{train_data_batch_1..10,val_data}``.

Images decoded from a tree or tarball are cached as one ``.npz`` per split under ``$BENCH_CACHE_DIR``
(default ``~/.cache/diswot-bench``), keyed by the source's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATA_ROOT_ENV = "BENCH_DATA_ROOT"
CACHE_DIR_ENV = "BENCH_CACHE_DIR"
SPLITS = ("train", "test")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    how_to_get: str


def _per255(r: float, g: float, b: float) -> tuple[float, float, float]:
    return (r / 255, g / 255, b / 255)


# Normalisation constants exactly as NAS-Bench-201 trained with them (pixel values / 255).
DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10",
        10,
        32,
        _per255(125.3, 123.0, 113.9),
        _per255(63.0, 62.1, 66.7),
        "pass --download to fetch it with torchvision, or place an image-folder tree or tarball in <root>/cifar10/",
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        100,
        32,
        _per255(129.3, 124.1, 112.4),
        _per255(68.2, 65.4, 70.4),
        "pass --download to fetch it with torchvision, or place an image-folder tree or tarball in <root>/cifar100/",
    ),
    "ImageNet16-120": DatasetSpec(
        "ImageNet16-120",
        120,
        16,
        _per255(122.68, 116.66, 104.01),
        _per255(63.22, 61.26, 65.09),
        "download the official ImageNet16 batches (Chrabaszcz et al. 2017, 'Imagenet16') into <root>/ImageNet16/",
    ),
}


class DataNotFoundError(FileNotFoundError):
    """No layout of a dataset was found; the message names the paths tried and how to get the data."""


@dataclass(frozen=True)
class ImageArrays:
    """A split held in memory: ``images`` uint8 (N, H, W, 3), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)


def check_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}. Valid choices: {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else ``$BENCH_DATA_ROOT``, else ``./data``."""
    return Path(root or os.environ.get(DATA_ROOT_ENV) or "data").expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "diswot-bench").expanduser()


# --- layouts ---------------------------------------------------------------------------------------


def _torchvision_split(dataset: str, root: Path, split: str, download: bool) -> ImageArrays | None:
    import torchvision

    folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}.get(dataset)
    if folder is None or not ((root / folder).is_dir() or download):
        return None
    cls = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    ds = cls(str(root), train=split == "train", download=download)
    return ImageArrays(
        np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), tuple(ds.classes), str(root / folder)
    )


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _split_and_class(member: str, split: str) -> str | None:
    """The class of a ``.../<split>/<class>/<file>`` path, or None if it belongs elsewhere."""
    parts = Path(member).parts
    if len(parts) >= 3 and parts[-3] == split and parts[-1].lower().endswith(_IMAGE_SUFFIXES):
        return parts[-2]
    return None


def _assemble(items: list[tuple[str, str, np.ndarray]], source: str) -> ImageArrays:
    items.sort(key=lambda item: (item[0], item[1]))
    classes = tuple(sorted({cls for cls, _, _ in items}))
    dataset_order = _TORCHVISION_CLASS_ORDER.get(len(classes), ())
    if set(dataset_order) == set(classes):
        classes = dataset_order
    index = {c: i for i, c in enumerate(classes)}
    images = np.stack([img for _, _, img in items])
    labels = np.array([index[cls] for cls, _, _ in items], dtype=np.int64)
    return ImageArrays(images, labels, classes, source)


# Folder trees name classes; torchvision's label order is the one models and papers use.
_TORCHVISION_CLASS_ORDER = {
    10: ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def _tree_split(folder: Path, split: str) -> ImageArrays | None:
    if not (folder / split).is_dir():
        return None
    items = [
        (path.parent.name, path.name, _decode(path.read_bytes()))
        for path in sorted((folder / split).glob("*/*"))
        if path.suffix.lower() in _IMAGE_SUFFIXES
    ]
    return _assemble(items, str(folder)) if items else None


def _tarball_split(tarball: Path, split: str) -> ImageArrays:
    items = []
    with tarfile.open(tarball) as tar:
        for member in tar:
            cls = _split_and_class(member.name, split) if member.isfile() else None
            if cls is not None:
                items.append((cls, Path(member.name).name, _decode(tar.extractfile(member).read())))
    if not items:
        raise DataNotFoundError(f"{tarball} holds no images under {split}/<class>/")
    return _assemble(items, str(tarball))


def _cached(source: Path, split: str, load: Callable[[], ImageArrays | None]) -> ImageArrays | None:
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}".encode()).hexdigest()[:16]
    path = cache_dir() / f"{source.name}-{split}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return ImageArrays(z["images"], z["labels"], tuple(z["classes"].tolist()), str(source))
    arrays = load()
    if arrays is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=arrays.images, labels=arrays.labels, classes=np.array(arrays.classes))
        tmp.replace(path)  # atomic, so parallel workers never read a half-written cache
    return arrays


def _folder_split(dataset: str, root: Path, split: str) -> ImageArrays | None:
    folder = root / dataset
    if not folder.is_dir():
        return None
    if (folder / split).is_dir():
        return _cached(folder / split, split, lambda: _tree_split(folder, split))
    tarballs = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.tgz")) + sorted(folder.glob("*.tar"))
    if tarballs:
        return _cached(tarballs[0], split, lambda: _tarball_split(tarballs[0], split))
    return None


def _imagenet16_split(root: Path, split: str) -> ImageArrays | None:
    folder = root / "ImageNet16"
    files = [folder / f"train_data_batch_{i}" for i in range(1, 11)] if split == "train" else [folder / "val_data"]
    if not all(f.is_file() for f in files):
        return None
    images, labels = [], []
    for f in files:
        with open(f, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 16, 16).transpose(0, 2, 3, 1)
        y = np.asarray(entry["labels"], dtype=np.int64) - 1  # the batches number classes from 1
        keep = y < 120  # ImageNet16-120 is the first 120 classes
        images.append(data[keep])
        labels.append(y[keep])
    return ImageArrays(np.concatenate(images), np.concatenate(labels), tuple(str(i) for i in range(120)), str(folder))


def candidate_paths(dataset: str, root: Path) -> list[Path]:
    """The places searched for ``dataset``, in order, for error messages and ``bench data check``."""
    if dataset == "ImageNet16-120":
        return [root / "ImageNet16"]
    folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[dataset]
    return [root / folder, root / dataset / "{train,test}", root / dataset / "*.tar.gz"]


def load_split(
    dataset: str, split: str = "train", *, root: str | os.PathLike | None = None, download: bool = False
) -> ImageArrays:
    """All images and labels of one split of ``dataset``, from the first layout found under the root."""
    check_dataset(dataset)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}. Valid choices: {', '.join(SPLITS)}")
    base = resolve_data_root(root)
    if dataset == "ImageNet16-120":
        arrays = _imagenet16_split(base, split)
    else:
        arrays = _torchvision_split(dataset, base, split, download=False) or _folder_split(dataset, base, split)
        if arrays is None and download:
            arrays = _torchvision_split(dataset, base, split, download=True)
    if arrays is None:
        tried = ", ".join(str(p) for p in candidate_paths(dataset, base))
        raise DataNotFoundError(
            f"dataset {dataset!r} ({split}) not found under data root {base} (tried {tried}); "
            f"{DATASETS[dataset].how_to_get}. Set the root with --data-root or ${DATA_ROOT_ENV}."
        )
    return arrays


def locate(dataset: str, root: str | os.PathLike | None = None) -> Path | None:
    """Where ``dataset`` would be read from, without decoding it (None if absent)."""
    base = resolve_data_root(root)
    if dataset == "ImageNet16-120":
        folder = base / "ImageNet16"
        return folder if (folder / "val_data").is_file() else None
    tv = base / {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[dataset]
    if tv.is_dir():
        return tv
    folder = base / dataset
    if (folder / "train").is_dir():
        return folder
    tarballs = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.tgz")) if folder.is_dir() else []
    return tarballs[0] if tarballs else None


def normalize(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) to float (N, 3, H, W), scaled to [0, 1] and standardised per channel."""
    spec = check_dataset(dataset)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass(frozen=True)
class Batch:
    """One seeded proxy batch: normalised images, labels and which training images they are."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: np.ndarray
    dataset: str
    seed: int

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.images.to(device), self.labels.to(device), self.indices, self.dataset, self.seed)


def proxy_batch(
    dataset: str,
    *,
    batch_size: int = 64,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = False,
) -> Batch:
    """``batch_size`` training images drawn uniformly without replacement by a seeded generator."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    arrays = load_split(dataset, split, root=root, download=download)
    if batch_size > len(arrays):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(arrays)} images of {dataset}/{split}")
    indices = np.sort(np.random.default_rng(seed).choice(len(arrays), size=batch_size, replace=False))
    return Batch(
        images=normalize(arrays.images[indices], dataset),
        labels=torch.from_numpy(arrays.labels[indices]),
        indices=indices,
        dataset=dataset,
        seed=seed,
    )


def images_for(dataset: str, root: str | os.PathLike | None = None) -> str:
    """The dataset whose images stand in for ``dataset``'s in a proxy batch: ``dataset`` itself where its images
    are found under the root; otherwise the first dataset with images of the same size and no more classes
    that is found (CIFAR-10's for CIFAR-100's), so a head of ``dataset``'s width scores real images. Callers
    state the substitution; ``dataset`` again where none is found (loading it then says what is missing).
    """
    spec = check_dataset(dataset)
    if locate(dataset, root) is not None:
        return dataset
    for name, other in DATASETS.items():
        if other.image_size == spec.image_size and other.num_classes <= spec.num_classes and locate(name, root):
            return name
    return dataset
