"""What a model builder needs to know about its data: input shape and class count.

nnfabrik model functions receive the dataloaders, not sizes, so every builder
in this package asks this module.  The input shape comes from one training
batch; the number of classes from a ``num_classes`` attribute on the dataset
(the datasets of :mod:`nntransfer.datasets` set it), because counting labels
would mean reading the whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch.utils.data import DataLoader

from nntransfer.errors import ConfigError, DataError


@dataclass(frozen=True)
class DataInfo:
    """Shape of one input (without the batch dimension) and number of classes."""

    input_shape: tuple[int, ...]
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` for convolutional models; flat inputs are refused with a hint."""
        if len(self.input_shape) != 3:
            raise ConfigError(
                f"This model needs image inputs shaped (C, H, W); the data gives "
                f"{self.input_shape}. Turn off `flatten` in the dataset config."
            )
        return self.input_shape

    @property
    def input_size(self) -> int:
        """Number of input values, for models that flatten their input."""
        size = 1
        for dim in self.input_shape:
            size *= dim
        return size


def data_info(dataloaders: Mapping, num_classes: int | None = None, split: str = "train") -> DataInfo:
    """Read input shape and class count from ``dataloaders[split]``.

    ``dataloaders[split]`` may be one loader or a dict of loaders keyed by task;
    in the latter case all tasks must agree.  ``num_classes`` overrides the
    dataset's attribute (needed for datasets that do not set one).
    """
    if not isinstance(dataloaders, Mapping) or split not in dataloaders:
        keys = list(dataloaders) if isinstance(dataloaders, Mapping) else type(dataloaders).__name__
        raise DataError(
            f"Model builders need dataloaders as {{'{split}': loader, ...}}; got {keys}."
        )
    loaders = dataloaders[split]
    if isinstance(loaders, Mapping):
        infos = {key: _loader_info(loader, num_classes, key) for key, loader in loaders.items()}
        distinct = set(infos.values())
        if len(distinct) != 1:
            raise DataError(
                f"The {split!r} loaders disagree on input shape or class count: {infos}. "
                "Build one model per task or make the tasks' data agree."
            )
        return distinct.pop()
    return _loader_info(loaders, num_classes, split)


def _loader_info(loader: DataLoader, num_classes: int | None, name: str) -> DataInfo:
    dataset = getattr(loader, "dataset", None)
    if num_classes is None:
        num_classes = _dataset_attribute(dataset, "num_classes")
    if num_classes is None:
        raise DataError(
            f"The {name!r} dataset has no `num_classes` attribute. Set it on the dataset or "
            "pass `num_classes` in the model config."
        )
    if int(num_classes) < 1:
        raise ConfigError(f"`num_classes` must be a positive integer; got {num_classes}.")
    shape = _dataset_attribute(dataset, "input_shape")
    if shape is None:
        shape = _sample_input_shape(loader, dataset, name)
    return DataInfo(tuple(int(d) for d in shape), int(num_classes))


def _dataset_attribute(dataset, attribute: str):
    """Follow ``.dataset`` links (Subset and similar wrappers) to an attribute."""
    while dataset is not None:
        value = getattr(dataset, attribute, None)
        if value is not None:
            return value
        dataset = getattr(dataset, "dataset", None)
    return None


def _sample_input_shape(loader, dataset, name: str) -> tuple[int, ...]:
    """Shape of one input, read so that the run's random streams are left untouched.

    Drawing a batch from a shuffled loader would advance its sampler, so a
    dataset that can be indexed is asked for item 0 instead, under a forked RNG.
    """
    with torch.random.fork_rng(devices=[]):
        if dataset is not None and hasattr(dataset, "__getitem__"):
            sample, leading = dataset[0], ()
        else:
            try:
                sample, leading = next(iter(loader)), (0,)
            except StopIteration:
                raise DataError(
                    f"The {name!r} loader is empty; a model cannot infer its input size."
                ) from None
    inputs = sample[0] if isinstance(sample, (tuple, list)) else sample
    if not isinstance(inputs, torch.Tensor):
        raise DataError(
            f"The {name!r} data must yield (inputs, targets[, extras]) with a tensor as "
            f"inputs; got {type(inputs).__name__}."
        )
    return tuple(inputs.shape[len(leading):])
