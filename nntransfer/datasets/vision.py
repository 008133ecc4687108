"""MNIST, Fashion-MNIST, CIFAR-10/100 and image folders read from a local ``root``.

They share every option with :func:`nntransfer.datasets.digits.digits_dataset_fn`
(see its docstring) through :func:`nntransfer.datasets.loaders.build_image_loaders`.
MNIST, Fashion-MNIST and CIFAR keep their official test set as the ``test``
split and draw ``validation`` from the official training set; an image folder
is split by ``validation_fraction`` and ``test_fraction`` like digits.

``download`` is passed to torchvision and is off by default: experiments must
not depend on the internet at run time, so fetch the files once beforehand.

Image folders and MNIST-format files stay on disk: the loaders' worker
processes read each image when a batch needs it (``num_workers``,
``pin_memory``, ``persistent_workers``, ``prefetch_factor`` are torch's
DataLoader options), so a folder of a million files needs memory for its
names only.  Their normalisation statistics come from at most 2,000
training images (see :func:`nntransfer.datasets.loaders.channel_statistics`);
``normalize={"mean": [...], "std": [...]}`` sets a pretrained backbone's
instead.  ``persistent_workers`` keeps the workers from one epoch to the
next; torch then draws later epochs' shuffles (and the workers' augmentation
seeds) differently than without it, so a run resumed from a checkpoint
continues exactly only without it.
"""

from __future__ import annotations

from torch.utils.data import DataLoader
from torchvision import datasets as tv_datasets

from nntransfer.datasets.files import read_cifar, read_image_folder, read_mnist_like
from nntransfer.datasets.loaders import build_image_loaders
from nntransfer.errors import ConfigError

UINT8_SCALE = 1.0 / 255.0


def _official_split(seed, reader, dataset_class, root, download, options) -> dict[str, DataLoader]:
    images, labels = reader(dataset_class, root, train=True, download=download)
    test_images, test_labels = reader(dataset_class, root, train=False, download=download)
    return build_image_loaders(
        seed,
        images,
        labels,
        scale=UINT8_SCALE,
        test_images=test_images,
        test_labels=test_labels,
        **options,
    )


def mnist_dataset_fn(
    seed: int,
    *,
    root: str = "data",
    download: bool = False,
    batch_size: int = 64,
    validation_fraction: float = 0.1,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """MNIST from ``root/MNIST/raw`` (idx files), 1x28x28, 10 classes."""
    options = dict(locals())
    for key in ("seed", "root", "download"):
        options.pop(key)
    return _official_split(seed, read_mnist_like, tv_datasets.MNIST, root, download, options)


def fashion_mnist_dataset_fn(
    seed: int,
    *,
    root: str = "data",
    download: bool = False,
    batch_size: int = 64,
    validation_fraction: float = 0.1,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """Fashion-MNIST from ``root/FashionMNIST/raw`` (idx files), 1x28x28, 10 classes."""
    options = dict(locals())
    for key in ("seed", "root", "download"):
        options.pop(key)
    return _official_split(seed, read_mnist_like, tv_datasets.FashionMNIST, root, download, options)


def cifar10_dataset_fn(
    seed: int,
    *,
    root: str = "data",
    download: bool = False,
    batch_size: int = 64,
    validation_fraction: float = 0.1,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (python batches), 3x32x32, 10 classes."""
    options = dict(locals())
    for key in ("seed", "root", "download"):
        options.pop(key)
    return _official_split(seed, read_cifar, tv_datasets.CIFAR10, root, download, options)


def cifar100_dataset_fn(
    seed: int,
    *,
    root: str = "data",
    download: bool = False,
    batch_size: int = 64,
    validation_fraction: float = 0.1,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``, 3x32x32, 100 classes."""
    options = dict(locals())
    for key in ("seed", "root", "download"):
        options.pop(key)
    return _official_split(seed, read_cifar, tv_datasets.CIFAR100, root, download, options)


def image_folder_dataset_fn(
    seed: int,
    *,
    root: str = "data",
    image_size: int = 32,
    grayscale: bool = False,
    batch_size: int = 64,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int | None = None,
    flatten: bool = False,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """``root/<class>/<image>`` files, read when a batch needs them and resized to ``image_size`` squares.

    Labels number the class folders in sorted order; ``classes`` filters by
    those numbers, and the datasets' ``class_names`` list the folder names.
    """
    if int(image_size) < 1:
        raise ConfigError(f"`image_size` must be a positive integer; got {image_size}.")
    images, labels, names = read_image_folder(root, int(image_size), grayscale)
    loaders = build_image_loaders(
        seed,
        images,
        labels,
        scale=UINT8_SCALE,
        batch_size=batch_size,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        flatten=flatten,
        classes=classes,
        class_range=class_range,
        examples_per_class=examples_per_class,
        train_subset=train_subset,
        normalize=normalize,
        augmentation=augmentation,
        transfer_data=transfer_data,
        return_index=return_index,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers,
        prefetch_factor=prefetch_factor,
    )
    for loader in loaders.values():
        loader.dataset.class_names = [names[label] for label in loader.dataset.classes]
    return loaders
