"""Image data: CIFAR-10/100 and ImageNet16-120 from the layouts users have, and seeded proxy batches.

One data root (``--data-root`` or ``$BENCH_DATA_ROOT``, else ``./data``) holds, for each dataset,
one of the layouts below; the first that exists is used:

- torchvision's folders (``cifar-10-batches-py``, ``cifar-100-python``), downloaded there on request;
- an image-folder tree ``<root>/<dataset>/{train,test}/<class>/<image>``;
- a tarball of such a tree ``<root>/<dataset>/*.tar.gz`` (e.g. ``cifar10_jpg_q75.tar.gz``);
- for ImageNet16-120, the official batches ``<root>/ImageNet16/{train_data_batch_1..10,val_data}``.

A whole split decoded from a tree or tarball (for training) is cached as one ``.npz`` under
``$BENCH_CACHE_DIR`` (default ``~/.cache/diswot-bench``), keyed by the source's path, size and modification
time. A proxy batch decodes only its own images (:func:`open_split`), unless that cache is already there.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
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


class DataError(ValueError):
    """A dataset's file is there but unusable: damaged, truncated, empty or of another layout. The message
    names the file and what is wrong with it."""


@dataclass(frozen=True)
class ImageArrays:
    """A split held in memory: ``images`` uint8 (N, H, W, 3), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: Sequence[int] | np.ndarray) -> ImageArrays:
        """The images and labels at ``indices``."""
        return ImageArrays(self.images[indices], self.labels[indices], self.classes, self.source)


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
    folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}.get(dataset)
    if folder is None or not ((root / folder).is_dir() or download):
        return None
    import torchvision

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
    # String operations, not Path: this runs once per member of a tarball (60,000 for CIFAR-10).
    parts = member.rsplit("/", 3)
    if len(parts) >= 3 and parts[-3] == split and parts[-1].lower().endswith(_IMAGE_SUFFIXES):
        return parts[-2]
    return None


# Folder trees name classes; torchvision's label order is the one models and papers use.
_TORCHVISION_CLASS_ORDER = {
    10: ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def _class_order(names: set[str]) -> tuple[str, ...]:
    classes = tuple(sorted(names))
    dataset_order = _TORCHVISION_CLASS_ORDER.get(len(classes), ())
    return dataset_order if set(dataset_order) == set(classes) else classes


@dataclass(frozen=True)
class EncodedSplit:
    """A split of encoded image files (a folder tree or a tarball) in the order a full decode stacks them,
    sorted by (class, file name); :meth:`decode` decodes only the images asked for."""

    keys: list[tuple[str, str]]  # (class, file name) of each image, sorted
    blobs: list[Callable[[], bytes]]  # the encoded bytes of each image, in the same order
    source: str

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, indices: Sequence[int] | np.ndarray | None = None) -> ImageArrays:
        """The images at ``indices`` (all when None), with their labels, decoded."""
        chosen = range(len(self)) if indices is None else [int(i) for i in indices]
        classes = _class_order({cls for cls, _ in self.keys})
        index = {c: i for i, c in enumerate(classes)}
        images = np.stack([self._decoded(i) for i in chosen])
        labels = np.array([index[self.keys[i][0]] for i in chosen], dtype=np.int64)
        return ImageArrays(images, labels, classes, self.source)

    def _decoded(self, i: int) -> np.ndarray:
        try:
            return _decode(self.blobs[i]())
        except Exception as err:  # PIL raises several types for bytes that are not an image
            cls, name = self.keys[i]
            raise DataError(
                f"image {cls}/{name} of {self.source} cannot be decoded ({type(err).__name__}: {err}); "
                "the file is damaged: replace it with an intact copy"
            ) from None


def _encoded(members: list[tuple[str, str, Callable[[], bytes]]], source: str) -> EncodedSplit:
    members.sort(key=lambda m: (m[0], m[1]))
    return EncodedSplit([(c, n) for c, n, _ in members], [blob for _, _, blob in members], source)


def _tree_members(folder: Path, split: str) -> EncodedSplit | None:
    if not (folder / split).is_dir():
        return None
    members = [
        (path.parent.name, path.name, path.read_bytes)
        for path in (folder / split).glob("*/*")
        if path.suffix.lower() in _IMAGE_SUFFIXES
    ]
    return _encoded(members, str(folder)) if members else None


def _tar_entries(buffer: bytes) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of each regular file of an uncompressed tar held in ``buffer``.

    Plain ustar headers are read directly: Python's ``tarfile`` takes about 1.5 CPU-s to list the 60,000
    members of CIFAR-10, reading them this way a fifth of that. Anything else (pax or GNU long-name
    records, links, a bad checksum) is left to ``tarfile``, which reads every layout and reports damage.
    """
    entries, headers = [], []
    offset, plain = 0, True
    while offset + 512 <= len(buffer):
        header = buffer[offset : offset + 512]
        if header[0] == 0 and not any(header):
            break  # the end-of-archive block
        kind = header[156:157]
        try:
            size = int(header[124:136].strip(b" \0") or b"0", 8)
        except ValueError:
            plain = False
            break
        if kind not in (b"0", b"\0", b"5", b"7"):
            plain = False
            break
        headers.append(header)
        if kind != b"5":
            name = header[:100].split(b"\0", 1)[0]
            if header[257:262] == b"ustar" and (prefix := header[345:500].split(b"\0", 1)[0]):
                name = prefix + b"/" + name
            entries.append((name.decode("utf-8", "surrogateescape"), offset + 512, size))
        offset += 512 + (size + 511) // 512 * 512
    if not (plain and _checksums_hold(headers)):
        with tarfile.open(fileobj=io.BytesIO(buffer), mode="r:") as tar:
            entries = [(m.name, m.offset_data, m.size) for m in tar if m.isfile()]
    if entries and entries[-1][1] + entries[-1][2] > len(buffer):
        raise tarfile.ReadError(f"truncated: {entries[-1][0]} ends past the end of the archive")
    return entries


def _checksums_hold(headers: list[bytes]) -> bool:
    """Whether every 512-byte header carries its checksum: the sum of its bytes, the checksum field (eight
    bytes at 148) counted as spaces. Computed for all headers at once."""
    if not headers:
        return True
    rows = np.frombuffer(b"".join(headers), dtype=np.uint8).reshape(len(headers), 512)
    field = rows[:, 148:156].astype(np.int64)
    computed = rows.sum(axis=1, dtype=np.int64) - field.sum(axis=1) + 8 * ord(" ")
    # The usual field: octal digits, then a NUL or a space; others are parsed one by one below.
    stored = np.zeros(len(headers), dtype=np.int64)
    going = np.ones(len(headers), dtype=bool)
    for column in (field - ord("0")).T:
        going &= (column >= 0) & (column <= 7)
        stored = np.where(going, stored * 8 + column, stored)
    for i in np.flatnonzero(stored != computed):
        try:
            if int(headers[i][148:156].strip(b" \0"), 8) != computed[i]:
                return False
        except ValueError:
            return False
    return True


@functools.lru_cache(maxsize=2)
def _tarball_index(path: str, size: int, mtime_ns: int) -> tuple[memoryview, list[tuple[str, int, int]]]:
    """The uncompressed bytes of a tarball and its regular files (name, data offset, size); kept for the
    tarball's size and modification time, so a check and the load that follows read it once."""
    data = Path(path).read_bytes()
    if not data:
        raise DataError(f"{path} is empty (0 bytes); replace it with an intact copy")
    try:
        buffer = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        entries = _tar_entries(buffer)
    except (EOFError, OSError, zlib.error, tarfile.TarError) as err:
        raise DataError(
            f"{path} is not a readable tarball ({err or type(err).__name__}): it is damaged or truncated; "
            "replace it with an intact copy"
        ) from None
    return memoryview(buffer), entries


def _tarball_members(tarball: Path, split: str) -> EncodedSplit:
    stat = tarball.stat()
    view, entries = _tarball_index(str(tarball), stat.st_size, stat.st_mtime_ns)
    members = []
    marker = f"{split}/"
    for name, start, size in entries:
        cls = _split_and_class(name, split) if marker in name else None
        if cls is not None:
            members.append((cls, name.rsplit("/", 1)[-1], lambda s=start, n=size: bytes(view[s : s + n])))
    if not members:
        example = f"; it holds e.g. {entries[0][0]}" if entries else "; it holds no files"
        raise DataError(
            f"{tarball} holds no images under {split}/<class>/ (the layout is {split}/<class>/<image>.jpg or "
            f".png{example})"
        )
    return _encoded(members, str(tarball))


def _cache_path(source: Path, split: str) -> Path:
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}".encode()).hexdigest()[:16]
    return cache_dir() / f"{source.name}-{split}-{key}.npz"


def _read_cache(path: Path, source: Path) -> ImageArrays:
    with np.load(path) as z:
        return ImageArrays(z["images"], z["labels"], tuple(z["classes"].tolist()), str(source))


def _cached(source: Path, split: str, load: Callable[[], ImageArrays | None]) -> ImageArrays | None:
    path = _cache_path(source, split)
    if path.exists():
        return _read_cache(path, source)
    arrays = load()
    if arrays is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=arrays.images, labels=arrays.labels, classes=np.array(arrays.classes))
        tmp.replace(path)  # atomic, so parallel workers never read a half-written cache
    return arrays


def _folder_source(dataset: str, root: Path, split: str) -> tuple[Path, Callable[[], EncodedSplit | None]] | None:
    """The tree or tarball of ``dataset`` under ``root`` and how to list its images, or None."""
    folder = root / dataset
    if not folder.is_dir():
        return None
    if (folder / split).is_dir():
        return folder / split, lambda: _tree_members(folder, split)
    tarballs = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.tgz")) + sorted(folder.glob("*.tar"))
    if tarballs:
        return tarballs[0], lambda: _tarball_members(tarballs[0], split)
    return None


def _folder_split(dataset: str, root: Path, split: str) -> ImageArrays | None:
    found = _folder_source(dataset, root, split)
    if found is None:
        return None
    source, members = found

    def decode_all() -> ImageArrays | None:
        encoded = members()
        return encoded.take() if encoded is not None else None

    return _cached(source, split, decode_all)


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


def _check_split(dataset: str, split: str) -> None:
    check_dataset(dataset)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}. Valid choices: {', '.join(SPLITS)}")


def _not_found(dataset: str, split: str, base: Path) -> DataNotFoundError:
    base = base.resolve()  # where a relative root pointed, so the message means the same anywhere
    tried = ", ".join(str(p) for p in candidate_paths(dataset, base))
    return DataNotFoundError(
        f"dataset {dataset!r} ({split}) not found under data root {base} (tried {tried}); "
        f"{DATASETS[dataset].how_to_get}. Set the root with --data-root or ${DATA_ROOT_ENV}."
    )


def load_split(
    dataset: str, split: str = "train", *, root: str | os.PathLike | None = None, download: bool = False
) -> ImageArrays:
    """All images and labels of one split of ``dataset``, from the first layout found under the root."""
    _check_split(dataset, split)
    base = resolve_data_root(root)
    if dataset == "ImageNet16-120":
        arrays = _imagenet16_split(base, split)
    else:
        arrays = _torchvision_split(dataset, base, split, download=False) or _folder_split(dataset, base, split)
        if arrays is None and download:
            arrays = _torchvision_split(dataset, base, split, download=True)
    if arrays is None:
        raise _not_found(dataset, split, base)
    return arrays


def open_split(
    dataset: str, split: str = "train", *, root: str | os.PathLike | None = None, download: bool = False
) -> ImageArrays | EncodedSplit:
    """One split of ``dataset``, its images decoded only as they are taken (``take(indices)``).

    Image-folder trees and tarballs are listed, not decoded (the decoded cache of the whole split is used
    where a full load made it); the other layouts are read as :func:`load_split` reads them. Taking
    indices gives exactly the images and labels that :func:`load_split` holds at those indices.
    """
    _check_split(dataset, split)
    base = resolve_data_root(root)
    if dataset == "ImageNet16-120":
        opened: ImageArrays | EncodedSplit | None = _imagenet16_split(base, split)
    else:
        opened = _torchvision_split(dataset, base, split, download=False)
        found = _folder_source(dataset, base, split) if opened is None else None
        if found is not None:
            source, members = found
            cached = _cache_path(source, split)
            opened = _read_cache(cached, source) if cached.exists() else members()
        if opened is None and download:
            opened = _torchvision_split(dataset, base, split, download=True)
    if opened is None:
        raise _not_found(dataset, split, base)
    return opened


def require_dataset(dataset: str, root: str | os.PathLike | None = None, split: str = "train") -> Path:
    """Where ``dataset`` would be read from (:func:`locate`); :class:`DataNotFoundError` naming the paths tried
    and how to get the data where it is absent. Nothing is decoded."""
    check_dataset(dataset)
    where = locate(dataset, root)
    if where is None:
        raise _not_found(dataset, split, resolve_data_root(root))
    if where.is_file():  # a tarball: listing it (kept for the load that follows) finds a damaged one now
        _tarball_members(where, split)
    return where


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


#: Images per split of the datasets as published.
EXPECTED_IMAGES = {
    "cifar10": {"train": 50_000, "test": 10_000},
    "cifar100": {"train": 50_000, "test": 10_000},
}


@dataclass(frozen=True)
class DatasetCheck:
    """What ``bench data check`` reports of one dataset: where it is, whether it is usable and why not."""

    name: str
    where: Path | None
    ok: bool
    detail: str
    images: dict[str, int]


def verify_dataset(dataset: str, root: str | os.PathLike | None = None, *, decode: int = 4) -> DatasetCheck:
    """Open what :func:`locate` finds of ``dataset`` and check it: each split's layout and image count against
    the published one, and ``decode`` images of each split (seeded picks) decoded. Nothing is cached."""
    check_dataset(dataset)
    where = locate(dataset, root)
    if where is None:
        return DatasetCheck(dataset, None, False, "not found", {})
    counts: dict[str, int] = {}
    try:
        for split in SPLITS if dataset != "ImageNet16-120" else ("test",):
            opened = open_split(dataset, split, root=root)
            counts[split] = len(opened)
            expected = EXPECTED_IMAGES.get(dataset, {}).get(split)
            if expected is not None and counts[split] != expected:
                detail = f"{split} has {counts[split]:,} images, not the {expected:,} expected"
                return DatasetCheck(dataset, where, False, detail, counts)
            picks = np.random.default_rng(0).choice(len(opened), size=min(decode, len(opened)), replace=False)
            opened.take(np.sort(picks))
    except (DataError, DataNotFoundError, OSError, pickle.UnpicklingError, EOFError) as err:
        return DatasetCheck(dataset, where, False, str(err).replace(f"{where} ", "").strip(), counts)
    return DatasetCheck(dataset, where, True, ", ".join(f"{n:,} {s}" for s, n in counts.items()) + " images", counts)


def normalize(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) to float (N, 3, H, W), scaled to [0, 1] and standardised per channel."""
    import torch

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
    """``batch_size`` training images drawn uniformly without replacement by a seeded generator.

    Only those images are decoded (:func:`open_split`); the indices index the split as :func:`load_split`
    orders it, so the batch of a seed never depends on how the images were read.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    split_images = open_split(dataset, split, root=root, download=download)
    if batch_size > len(split_images):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(split_images)} images of {dataset}/{split}")
    indices = np.sort(np.random.default_rng(seed).choice(len(split_images), size=batch_size, replace=False))
    arrays = split_images.take(indices)
    return Batch(
        images=normalize(arrays.images, dataset),
        labels=torch.from_numpy(arrays.labels),
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
