"""Readers for image datasets stored on disk in torchvision's layouts.

Nothing is downloaded unless ``download=True`` is passed through to
torchvision; by default the files must already be under ``root``.  Every
reader returns ``(images (N, C, H, W) of uint8, labels int64 array)``, where
the images of MNIST-format files and image folders stay on disk and are read
one at a time (:class:`~nntransfer.datasets.file_rows.FileRows`,
:class:`~nntransfer.datasets.image_files.ImageFiles`), and CIFAR's are a
tensor: its batches are pickles, which can only be read whole (60,000 images
of 3x32x32 bytes, 180 MB).

CIFAR batches are Python pickles.  They are read with an unpickler that only
rebuilds numpy arrays, so a tampered file cannot run code (torchvision's own
reader would run it), and without torchvision's MD5 check, so small test
fixtures in the same format load too.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torchvision

from nntransfer.datasets.file_rows import FileRows
from nntransfer.datasets.image_files import ImageFiles
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


IDX_IMAGES, IDX_LABELS = 2051, 2049
"""Magic numbers of idx files: unsigned bytes in 3 dimensions (images), in 1 (labels)."""


def read_mnist_like(
    dataset_class: type, root: str, train: bool, download: bool
) -> tuple[FileRows, np.ndarray]:
    """MNIST-format files (uncompressed idx) under ``root/<ClassName>/raw``: images stay on disk."""
    if download:
        dataset_class(root, train=train, download=True)
    folder = Path(root) / dataset_class.__name__ / "raw"
    prefix = "train" if train else "t10k"
    images_path, labels_path = (folder / f"{prefix}-{kind}-idx{dims}-ubyte" for kind, dims in (("images", 3), ("labels", 1)))
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(
                f"{dataset_class.__name__} file {str(path)!r} not found. Put the uncompressed idx files in "
                f"{str(folder)!r} or pass download=True where the internet is reachable."
            )
    count, rows, cols = _idx_header(images_path, IDX_IMAGES, 3)
    (label_count,) = _idx_header(labels_path, IDX_LABELS, 1)
    if label_count != count:
        raise DataError(f"{str(images_path)!r} has {count} images but {str(labels_path)!r} {label_count} labels.")
    labels = np.fromfile(labels_path, dtype=np.uint8, count=count, offset=8).astype(np.int64)
    if len(labels) != count:
        raise DataError(f"{str(labels_path)!r} is truncated: {len(labels)} of {count} labels.")
    images = FileRows(images_path, offset=16, count=count, row_shape=(1, rows, cols), dtype=np.uint8)
    if images_path.stat().st_size < 16 + count * images.row_bytes:
        raise DataError(f"{str(images_path)!r} is truncated: it is too short for {count} images of {rows}x{cols}.")
    return images, labels


def _idx_header(path: Path, magic: int, dims: int) -> tuple[int, ...]:
    with path.open("rb") as handle:
        header = handle.read(4 * (1 + dims))
    if len(header) < 4 * (1 + dims) or struct.unpack(">I", header[:4])[0] != magic:
        raise DataError(f"{str(path)!r} is not an idx file of unsigned bytes in {dims} dimension(s) (magic {magic}).")
    return struct.unpack(f">{dims}I", header[4:])


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
) -> tuple[ImageFiles, np.ndarray, list[str]]:
    """``root/<class>/<image>`` files, to be resized to ``image_size`` squares when read.

    Returns the images (on disk, read one at a time), labels (folder index in
    sorted order, torchvision's rule) and the folder names.  Only the names
    are read here.
    """
    folder = torchvision.datasets.folder
    try:
        classes, class_to_index = folder.find_classes(root)
        samples = folder.make_dataset(root, class_to_index, extensions=folder.IMG_EXTENSIONS)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(
            f"No image folder at {root!r}: {error}. Expected one sub-folder per class with image files."
        ) from error
    labels = np.fromiter((label for _, label in samples), dtype=np.int64, count=len(samples))
    return ImageFiles([path for path, _ in samples], image_size, grayscale), labels, list(classes)
