"""Data loaders on the real CIFAR-10 images in the shared data folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data import DataNotFoundError, load_split, locate, normalize, proxy_batch


def test_cifar10_splits_are_real_and_balanced(data_root):
    train = load_split("cifar10", "train", root=data_root)
    test = load_split("cifar10", "test", root=data_root)
    assert train.images.shape == (50000, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 32, 32, 3)
    assert train.classes[:3] == ("airplane", "automobile", "bird") and len(train.classes) == 10
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    # Real photographs: varied pixels, not constant or random noise.
    std = train.images[:100].reshape(100, -1).std(axis=1)
    assert (std > 10).all()
    neighbours = np.abs(np.diff(train.images[:100].astype(int), axis=2)).mean()
    assert neighbours < 30  # natural images are smooth; uniform noise gives about 85


def test_proxy_batch_is_seeded_normalised_and_labelled(data_root):
    a = proxy_batch("cifar10", batch_size=64, seed=3, root=data_root)
    b = proxy_batch("cifar10", batch_size=64, seed=3, root=data_root)
    c = proxy_batch("cifar10", batch_size=64, seed=4, root=data_root)
    assert a.images.shape == (64, 3, 32, 32) and a.images.dtype == torch.float32
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not np.array_equal(a.indices, c.indices)
    assert len(set(a.indices.tolist())) == 64
    train = load_split("cifar10", "train", root=data_root)
    assert torch.equal(a.labels, torch.from_numpy(train.labels[a.indices]))
    assert torch.allclose(a.images, normalize(train.images[a.indices], "cifar10"))
    assert abs(a.images.mean().item()) < 0.3 and 0.7 < a.images.std().item() < 1.3


def test_missing_data_names_the_paths_and_the_remedy(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"cifar100.*tmp.*--download"):
        load_split("cifar100", root=tmp_path)
    with pytest.raises(DataNotFoundError, match="ImageNet16"):
        load_split("ImageNet16-120", root=tmp_path)
    assert locate("cifar10", tmp_path) is None


def test_unknown_dataset_and_split_list_the_choices(data_root):
    with pytest.raises(ValueError, match="Valid choices: cifar10, cifar100, ImageNet16-120"):
        load_split("mnist", root=data_root)
    with pytest.raises(ValueError, match="train, test"):
        load_split("cifar10", "valid", root=data_root)


def test_image_folder_tree_and_imagenet16_batches(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = tmp_path / "cifar100" / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    tree = load_split("cifar100", "train", root=tmp_path)
    assert tree.images.shape == (6, 32, 32, 3) and tree.classes == ("cat", "dog")
    assert tree.labels.tolist() == [0, 0, 0, 1, 1, 1]

    import pickle

    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    labels = [1, 120, 121, 5]  # 1-based; 121 is outside ImageNet16-120
    entry = {"data": rng.integers(0, 255, (4, 3 * 16 * 16), dtype=np.uint8), "labels": labels}
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        (folder / name).write_bytes(pickle.dumps(entry))
    val = load_split("ImageNet16-120", "test", root=tmp_path)
    assert val.images.shape == (3, 16, 16, 3)
    assert val.labels.tolist() == [0, 119, 4]
    assert np.array_equal(val.images[0], entry["data"][0].reshape(3, 16, 16).transpose(1, 2, 0))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_proxy_batch_decodes_only_its_images_and_equals_the_full_decode(data_root, tmp_path, monkeypatch, seed):
    full = load_split("cifar10", "train", root=data_root)  # the whole split, decoded (or its cache)
    empty_cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(empty_cache))
    batch = proxy_batch("cifar10", batch_size=64, seed=seed, root=data_root)
    indices = np.sort(np.random.default_rng(seed).choice(len(full), size=64, replace=False))
    assert np.array_equal(batch.indices, indices)
    assert torch.equal(batch.images, normalize(full.images[indices], "cifar10"))  # bit for bit
    assert torch.equal(batch.labels, torch.from_numpy(full.labels[indices]))
    assert not empty_cache.exists() or not any(empty_cache.iterdir())  # nothing decoded beyond the batch


def _image_tree(root, rng, names=("cat", "dog", "emu")):
    from PIL import Image

    for split in ("train", "test"):
        for cls in names:
            folder = root / "cifar100" / split / cls
            folder.mkdir(parents=True)
            for i in (3, 1, 2, 10):  # listed out of order on purpose
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")


@pytest.mark.parametrize("layout", ["tree", "ustar", "pax", "gnu"])
def test_open_split_takes_what_load_split_holds(tmp_path, monkeypatch, layout):
    """Every layout listed without decoding gives, index for index, the images and labels of the full load;
    tarballs that are not plain ustar (pax records, GNU long names) are read too."""
    import tarfile

    from bench.data import open_split

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    _image_tree(tree, np.random.default_rng(1))
    root = tree
    if layout != "tree":
        root = tmp_path / "tarball"
        (root / "cifar100").mkdir(parents=True)
        fmt = {"ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}[layout]
        with tarfile.open(root / "cifar100" / "images.tar.gz", "w:gz", format=fmt) as tar:
            # A long folder name needs a pax record or a GNU long-name block outside ustar.
            prefix = "x" * (120 if layout != "ustar" else 10)
            tar.add(tree / "cifar100", arcname=f"{prefix}/cifar100")
    lazy = open_split("cifar100", "train", root=root)
    assert len(lazy) == 12
    some = open_split("cifar100", "train", root=root).take([0, 5, 11])
    full = load_split("cifar100", "train", root=root)
    assert full.classes == ("cat", "dog", "emu") and full.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert np.array_equal(some.images, full.images[[0, 5, 11]])
    assert some.labels.tolist() == full.labels[[0, 5, 11]].tolist()
    assert np.array_equal(lazy.take(range(12)).images, full.images)
