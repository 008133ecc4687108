"""Readers for image datasets stored on disk in torchvision's layouts.

Nothing is downloaded unless ``download=True`` is passed through to
torchvision; by default the files must already be under ``root``.  Every
reader returns ``(images uint8 (N, C, H, W), labels int64 array)``.

CIFAR batches are Python pickles.  They are read with an unpickler that only
rebuilds numpy arrays, so a tampered file cannot run code (torchvision's own
reader would run it), and without torchvision's MD5 check, so small test
fixtures in the same format load too.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from nntransfer.errors import DataError

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # Python 3 writes the array bytes of a protocol-2 pickle through this call.
    ("_codecs", "encode"),
}


def read_mnist_like(
    dataset_class: type, root: str, train: bool, download: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """MNIST-format files (idx) under ``root/<ClassName>/raw``, via torchvision."""
    try:
        dataset = dataset_class(root, train=train, download=download)
    except RuntimeError as error:
        raise DataError(
            f"{dataset_class.__name__} files not found under {str(Path(root) / dataset_class.__name__ / 'raw')!r} "
            f"({error}). Put the idx files there or pass download=True where the internet is reachable."
        ) from error
    return dataset.data.unsqueeze(1), dataset.targets.numpy().astype(np.int64)


def read_cifar(
    dataset_class: type, root: str, train: bool, download: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """CIFAR-10/100 python batches under ``root/<base_folder>`` (torchvision's layout)."""
    if download:
        dataset_class(root, train=train, download=True)
    folder = Path(root) / dataset_class.base_folder
    files = dataset_class.train_list if train else dataset_class.test_list
    images, labels = [], []
    for file_name, _ in files:
        path = folder / file_name
        if not path.is_file():
            raise DataError(
                f"CIFAR file {str(path)!r} not found. Put the extracted python batches in "
                f"{str(folder)!r} or pass download=True where the internet is reachable."
            )
        with path.open("rb") as handle:
            entry = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    return torch.from_numpy(np.concatenate(images)), np.asarray(labels, dtype=np.int64)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise DataError(
                f"CIFAR batch refers to {module}.{name}; only numpy arrays are allowed in these files."
            )
        return super().find_class(module, name)


def read_image_folder(
    root: str, image_size: int, grayscale: bool
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """``root/<class>/<image>`` files, resized to ``image_size`` squares.

    Returns images, labels (folder index in sorted order, torchvision's rule)
    and the folder names.  All images are loaded into memory, which suits the
    small datasets transfer experiments use.
    """
    try:
        folder = torchvision.datasets.ImageFolder(root)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(
            f"No image folder at {root!r}: {error}. Expected one sub-folder per class with image files."
        ) from error
    mode = "L" if grayscale else "RGB"
    images = []
    for path, _ in folder.samples:
        with Image.open(path) as image:
            resized = image.convert(mode).resize((image_size, image_size), Image.BILINEAR)
        array = np.asarray(resized, dtype=np.uint8)
        images.append(array[None] if grayscale else array.transpose(2, 0, 1))
    labels = np.asarray(folder.targets, dtype=np.int64)
    return torch.from_numpy(np.stack(images)), labels, list(folder.classes)
