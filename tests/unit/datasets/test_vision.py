"""Tiny fake files in torchvision's on-disk formats, loaded through the dataset functions."""

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from nntransfer.datasets.vision import (
    cifar10_dataset_fn,
    cifar100_dataset_fn,
    fashion_mnist_dataset_fn,
    image_folder_dataset_fn,
    mnist_dataset_fn,
)
from nntransfer.errors import DataError

N_TRAIN_PER_CLASS, N_TEST_PER_CLASS = 6, 2


def _labels(num_classes, per_class):
    return np.tile(np.arange(num_classes), per_class).astype(np.uint8)


def _write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def _fake_mnist(root, name):
    rng = np.random.default_rng(0)
    for prefix, per_class in (("train", N_TRAIN_PER_CLASS), ("t10k", N_TEST_PER_CLASS)):
        labels = _labels(10, per_class)
        images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels  # lets a test recognise each sample by its label
        _write_idx(root / name / "raw", prefix, images, labels)


def _pickle(path, data, labels, key):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump({"data": data, key: list(map(int, labels))}, handle, protocol=2)


def _fake_cifar10(root):
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = _labels(10, 2 if name != "test_batch" else N_TEST_PER_CLASS)
        _pickle(folder / name, rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), labels, "labels")


def _fake_cifar100(root):
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    for name, per_class in (("train", 5), ("test", 1)):
        labels = _labels(100, per_class)
        _pickle(folder / name, rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), labels, "fine_labels")


@pytest.mark.parametrize("function, name", [(mnist_dataset_fn, "MNIST"), (fashion_mnist_dataset_fn, "FashionMNIST")])
def test_mnist_formats_load_with_official_test_split(tmp_path, function, name):
    _fake_mnist(tmp_path, name)
    loaders = function(0, root=str(tmp_path), validation_fraction=0.2, batch_size=8)
    sizes = {split: len(loader.dataset) for split, loader in loaders.items()}
    assert sizes == {"train": 48, "validation": 12, "test": 20}
    x, y = next(iter(loaders["test"]))
    assert x.shape == (8, 1, 28, 28) and loaders["test"].dataset.num_classes == 10
    test = loaders["test"].dataset
    assert torch.equal(test.images.to_tensor()[:, 0, 0, 0].long(), test.labels)


def test_mnist_class_filter_applies_to_the_official_test_set(tmp_path):
    _fake_mnist(tmp_path, "MNIST")
    loaders = mnist_dataset_fn(0, root=str(tmp_path), classes=[2, 7], validation_fraction=0.25)
    test = loaders["test"].dataset
    assert len(test) == 2 * N_TEST_PER_CLASS and test.classes == [2, 7]
    assert torch.equal(test.labels, (test.images.to_tensor()[:, 0, 0, 0] == 7).long())


def test_missing_mnist_files_raise_data_error_naming_the_folder(tmp_path):
    with pytest.raises(DataError, match="MNIST"):
        mnist_dataset_fn(0, root=str(tmp_path))


def test_cifar10_batches_load(tmp_path):
    _fake_cifar10(tmp_path)
    loaders = cifar10_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, image_size=16)
    assert len(loaders["train"].dataset) + len(loaders["validation"].dataset) == 100
    assert len(loaders["test"].dataset) == 20
    assert next(iter(loaders["train"]))[0].shape[1:] == (3, 16, 16)


def test_cifar100_uses_fine_labels(tmp_path):
    _fake_cifar100(tmp_path)
    loaders = cifar100_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, class_range=[10, 19])
    assert loaders["train"].dataset.num_classes == 10
    assert len(loaders["test"].dataset) == 10


def test_cifar_reader_refuses_pickles_that_would_run_code(tmp_path):
    _fake_cifar10(tmp_path)
    with (tmp_path / "cifar-10-batches-py" / "test_batch").open("wb") as handle:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [print]}, handle, protocol=2)
    with pytest.raises(DataError, match="only numpy arrays"):
        cifar10_dataset_fn(0, root=str(tmp_path))


def test_missing_cifar_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="data_batch_1"):
        cifar10_dataset_fn(0, root=str(tmp_path))


def test_image_folder_of_pngs(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("cat", "dog", "emu"):
        (tmp_path / name).mkdir()
        for i in range(5):
            size = (10 + i, 12)
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(array).save(tmp_path / name / f"{i}.png")
    loaders = image_folder_dataset_fn(0, root=str(tmp_path), image_size=8, grayscale=True, classes=[0, 2])
    dataset = loaders["train"].dataset
    assert dataset.input_shape == (1, 8, 8) and dataset.class_names == ["cat", "emu"]
    assert sum(len(loader.dataset) for loader in loaders.values()) == 10
    assert next(iter(loaders["test"]))[0].shape[1:] == (1, 8, 8)


def test_missing_image_folder_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="image folder"):
        image_folder_dataset_fn(0, root=str(tmp_path / "nothing"))


def test_every_image_dataset_takes_the_dataloader_worker_options(tmp_path):
    """num_workers, pin_memory, persistent_workers and prefetch_factor reach each split's DataLoader."""
    _fake_mnist(tmp_path, "MNIST")
    _fake_mnist(tmp_path, "FashionMNIST")
    _fake_cifar10(tmp_path)
    _fake_cifar100(tmp_path)
    for name in ("cat", "dog"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (6, 6), (i, 0, 0)).save(tmp_path / "folder" / name / f"{i}.png")
    options = dict(num_workers=1, pin_memory=True, persistent_workers=True, prefetch_factor=3, normalize=False)
    built = {
        "mnist": mnist_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, **options),
        "fashion_mnist": fashion_mnist_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, **options),
        "cifar10": cifar10_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, **options),
        "cifar100": cifar100_dataset_fn(0, root=str(tmp_path), validation_fraction=0.2, **options),
        "image_folder": image_folder_dataset_fn(0, root=str(tmp_path / "folder"), image_size=4, **options),
    }
    for name, loaders in built.items():
        for split, loader in loaders.items():
            got = (loader.num_workers, loader.pin_memory, loader.persistent_workers, loader.prefetch_factor)
            assert got == (1, True, True, 3), (name, split, got)
