"""From labelled images to the nnfabrik ``{"train", "validation", "test"}`` loaders.

Every dataset builder loads its images and labels and hands them to
:func:`build_image_loaders`, which applies the options they all share, in this
order: class filter and relabelling, stratified seeded split, training subsets
(k-shot, then a fraction), normalisation statistics from the training split,
transfer data, loaders.  Validation and test splits are never augmented or
subsampled, so scores stay comparable between runs with different options.

Images may be a tensor in memory or a source that reads them from disk one at
a time (:class:`~nntransfer.datasets.image_files.ImageFiles`,
:class:`~nntransfer.datasets.file_rows.FileRows`); both are indexed the same
way, so every option works on both, and a source on disk is only ever read
by the loaders' worker processes (``num_workers``, ``pin_memory``,
``persistent_workers``, ``prefetch_factor``: torch's DataLoader options).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from nntransfer.datasets.augmentation import Augmentation
from nntransfer.datasets.selection import (
    check_fraction,
    examples_per_class_subset,
    fraction_subset,
    relabel,
    select_classes,
    stratified_split,
)
from nntransfer.datasets.tensor_dataset import ImageTensorDataset
from nntransfer.errors import ConfigError, TransferError

SPLITS = ("train", "validation", "test")


def build_image_loaders(
    seed: int,
    images: torch.Tensor,
    labels: np.ndarray,
    *,
    scale: float,
    test_images: torch.Tensor | None = None,
    test_labels: np.ndarray | None = None,
    batch_size: int = 64,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: Sequence[int] | None = None,
    class_range: Sequence[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool | dict = True,
    augmentation: dict | None = None,
    transfer_data: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    return_index: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> dict[str, DataLoader]:
    """Split, filter and wrap ``images`` ``(N, C, H, W)`` into three loaders.

    ``scale`` maps stored pixel values to [0, 1] (1/16 for digits, 1/255 for
    ``uint8``).  When ``test_images`` is given (datasets with an official test
    set), ``test_fraction`` is not used and the test split is that set.
    ``split_seed`` fixes the split independently of ``seed`` (default: ``seed``),
    so runs with different seeds can share one test set.  ``normalize`` is
    True (each channel standardised with the training split's statistics,
    see :func:`channel_statistics`), False, or ``{"mean": [...], "std":
    [...]}`` per channel on the [0, 1] scale (a pretrained backbone's, e.g.
    ImageNet's ``[0.485, 0.456, 0.406]`` and ``[0.229, 0.224, 0.225]``).
    """
    _check_loader_options(batch_size, image_size, num_workers, persistent_workers, prefetch_factor)
    loader_options = {
        "num_workers": int(num_workers),
        "pin_memory": bool(pin_memory),
        "persistent_workers": bool(persistent_workers),
        "prefetch_factor": prefetch_factor,
    }
    augmentation_spec = Augmentation.from_config(augmentation)
    split_seed = seed if split_seed is None else int(split_seed)
    labels = np.asarray(labels)

    kept, new_labels, chosen = select_classes(labels, classes, class_range)
    validation_fraction = check_fraction("validation_fraction", validation_fraction)
    parts = {}
    if test_images is None:
        test_fraction = check_fraction("test_fraction", test_fraction)
        if validation_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"`validation_fraction` + `test_fraction` = {validation_fraction + test_fraction} "
                "leaves no training data; their sum must be below 1."
            )
        train, validation, test = stratified_split(
            new_labels, [validation_fraction, test_fraction], split_seed
        )
        parts["test"] = (images[kept[test]], new_labels[test])
    else:
        train, validation = stratified_split(new_labels, [validation_fraction], split_seed)
        test_kept, test_new_labels = relabel(test_labels, chosen)
        parts["test"] = (test_images[test_kept], test_new_labels)
    parts["validation"] = (images[kept[validation]], new_labels[validation])

    if examples_per_class is not None:
        train = train[examples_per_class_subset(new_labels[train], examples_per_class, split_seed)]
    if train_subset is not None:
        train = train[fraction_subset(new_labels[train], train_subset, split_seed)]
    parts["train"] = (images[kept[train]], new_labels[train])

    mean, std = _normalisation(normalize, parts["train"][0], scale, int(num_workers))
    transfer_data = _check_transfer_splits(transfer_data)
    loaders = {}
    for offset, split in enumerate(SPLITS):
        split_images, split_labels = parts[split]
        dataset = ImageTensorDataset(
            split_images,
            torch.as_tensor(split_labels),
            classes=chosen,
            scale=scale,
            mean=mean,
            std=std,
            image_size=image_size,
            flatten=flatten,
            augmentation=augmentation_spec if split == "train" else None,
            seed=seed + offset,
            return_index=return_index,
        )
        if split in transfer_data:
            dataset.attach(split, transfer_data[split])
        loaders[split] = make_loader(dataset, split, batch_size, seed, **loader_options)
    return loaders


STATISTICS_SAMPLE = 2000
"""Images read to estimate the normalisation statistics of data that stays on disk."""


def _normalisation(normalize, train_images, scale, num_workers):
    if normalize is True:
        return channel_statistics(train_images, scale, num_workers)
    if normalize is False:
        return None, None
    channels = train_images.shape[1] if train_images.ndim == 4 else None
    if not isinstance(normalize, dict) or sorted(normalize) != ["mean", "std"]:
        raise ConfigError(
            f"`normalize` must be True, False or {{'mean': [...], 'std': [...]}} (one value per channel); "
            f"got {normalize!r}."
        )
    mean, std = (torch.as_tensor(normalize[key], dtype=torch.float32).reshape(-1) for key in ("mean", "std"))
    if channels is None or len(mean) != channels or len(std) != channels or not bool((std > 0).all()):
        raise ConfigError(
            f"`normalize` needs one mean and one positive std per image channel ({channels}); got {normalize!r}."
        )
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)


def channel_statistics(images, scale: float, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of scaled images, shaped ``(C, 1, 1)`` for broadcasting.

    Images in memory give exact statistics.  Images read from disk give them
    from at most :data:`STATISTICS_SAMPLE` images (all of them when there
    are fewer), chosen with a fixed seed and read by ``num_workers``
    processes: one pass over a million files would cost an epoch.  A
    constant channel gets std 1 so normalising never divides by zero.
    """
    if isinstance(images, torch.Tensor):
        flat = images.float().mul(scale).transpose(0, 1).reshape(images.shape[1], -1)
        mean = flat.mean(dim=1)
        std = flat.std(dim=1)
    else:
        mean, std = _sampled_statistics(images, scale, num_workers)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)


def _sampled_statistics(images, scale, num_workers):
    count = len(images)
    positions = np.arange(count)
    if count > STATISTICS_SAMPLE:
        positions = np.sort(np.random.default_rng(0).choice(count, STATISTICS_SAMPLE, replace=False))
    total = squares = 0.0
    values = 0
    for batch in DataLoader(images[positions], batch_size=64, num_workers=num_workers):
        flat = batch.double().mul(scale).transpose(0, 1).reshape(batch.shape[1], -1)
        total = total + flat.sum(dim=1)
        squares = squares + flat.square().sum(dim=1)
        values += flat.shape[1]
    mean = total / values
    variance = (squares - values * mean.square()) / max(values - 1, 1)
    return mean.float(), variance.clamp(min=0).sqrt().float()


def make_loader(
    dataset: ImageTensorDataset,
    split: str,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
    *,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """Loader for one split: the training split is shuffled by a seeded generator."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=split == "train",
        generator=torch.Generator().manual_seed(int(seed)),
        num_workers=num_workers,
        worker_init_fn=_reseed_worker_dataset,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers,
        prefetch_factor=prefetch_factor,
    )


def _reseed_worker_dataset(worker_id: int) -> None:
    """Give each worker its own augmentation stream, derived from the loader's seed."""
    info = get_worker_info()
    info.dataset.reseed(info.seed)


def _check_loader_options(batch_size, image_size, num_workers, persistent_workers=False, prefetch_factor=None):
    if int(batch_size) < 1:
        raise ConfigError(f"`batch_size` must be a positive integer; got {batch_size}.")
    if image_size is not None and int(image_size) < 1:
        raise ConfigError(f"`image_size` must be a positive integer or None; got {image_size}.")
    if int(num_workers) < 0:
        raise ConfigError(f"`num_workers` must not be negative; got {num_workers}.")
    if prefetch_factor is not None and int(prefetch_factor) < 1:
        raise ConfigError(f"`prefetch_factor` must be a positive integer or None; got {prefetch_factor}.")
    if int(num_workers) == 0 and (persistent_workers or prefetch_factor is not None):
        option = "persistent_workers" if persistent_workers else "prefetch_factor"
        raise ConfigError(
            f"`{option}` applies to loader worker processes, but `num_workers` is 0; "
            "set num_workers >= 1 or leave the option at its default."
        )


def _check_transfer_splits(transfer_data):
    if not transfer_data:
        return {}
    if not isinstance(transfer_data, Mapping):
        raise TransferError(
            "`transfer_data` must be {split: {name: array}}, e.g. "
            f"{{'train': {{'logits': array}}}}; got {type(transfer_data).__name__}."
        )
    unknown = sorted(set(transfer_data) - set(SPLITS))
    if unknown:
        raise TransferError(
            f"`transfer_data` has splits {unknown}; this dataset has splits {list(SPLITS)}."
        )
    return transfer_data
