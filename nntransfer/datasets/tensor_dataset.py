"""An in-memory image dataset that every builder in this package returns.

Images stay in their stored form (``uint8`` for MNIST/CIFAR, small floats for
digits) and are scaled, augmented, resized, normalised and flattened one item
at a time.  That keeps CIFAR at 32x32 in memory even when a model wants 224x224
inputs, and it lets one class serve all datasets.

Inputs of other shapes, such as cached feature vectors ``(N, D)``, pass
through unchanged (no scaling beyond ``scale``, no resizing).

Attributes models rely on (see :mod:`nntransfer.models.data_info`):
``num_classes``, ``classes`` (original labels, in new-label order) and
``input_shape`` (shape of one returned input).
"""

from __future__ import annotations

import copy
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nntransfer.datasets.augmentation import Augmentation
from nntransfer.errors import TransferError
from nntransfer.transfer.provenance import receive


class ImageTensorDataset(Dataset):
    """Images ``(N, C, H, W)`` with integer labels and optional per-sample extras.

    An item is ``(x, y)``, or ``(x, y, extras)`` when the dataset carries transfer
    data or was asked for indices; ``extras`` then holds one row of every transfer
    array and ``"index"``, the item's position in this dataset.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        classes: list[int],
        scale: float = 1.0,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        image_size: int | None = None,
        flatten: bool = False,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        return_index: bool = False,
    ):
        self.images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.scale = float(scale)
        self.mean = mean
        self.std = std
        self.image_size = image_size
        self.flatten = flatten
        self.augmentation = augmentation
        self.return_index = return_index
        self.extras: dict[str, torch.Tensor] = {}
        self.generator = torch.Generator().manual_seed(int(seed))
        self.input_shape = self._output_shape()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x = self.images[index].float() * self.scale
        if self.augmentation is not None:
            x = self.augmentation(x, self.generator)
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size,) * 2:
            x = F.interpolate(
                x.unsqueeze(0),
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=self.image_size < x.shape[-1],
            ).squeeze(0)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.flatten:
            x = x.reshape(-1)
        y = self.labels[index]
        if not (self.extras or self.return_index):
            return x, y
        extras = {name: values[index] for name, values in self.extras.items()}
        extras["index"] = torch.tensor(index)
        return x, y, extras

    def _output_shape(self) -> tuple[int, ...]:
        if self.images.ndim != 4:
            return tuple(self.images.shape[1:])
        channels, height, width = self.images.shape[1:]
        if self.image_size is not None:
            height = width = self.image_size
        shape = (channels, height, width)
        return (channels * height * width,) if self.flatten else shape

    def without_augmentation(self) -> "ImageTensorDataset":
        """The same samples, in the same order, with augmentation off.

        Use it to compute per-sample outputs (features, teacher logits) that a
        later step aligns with this dataset: those must not depend on random
        perturbations.
        """
        view = copy.copy(self)
        view.augmentation = None
        return view

    def reseed(self, seed: int) -> None:
        """Restart the augmentation stream; loader workers call this on start-up."""
        self.generator.manual_seed(int(seed) % (2**63))

    def attach(self, split: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Carry transfer data rows (aligned with this dataset's order) in every item.

        Data that records what it was computed on must come from this split
        and these samples in this order (:mod:`nntransfer.transfer.provenance`).
        """
        for name, values in receive(split, arrays, self.labels).items():
            if name == "index":
                raise TransferError(
                    f"Transfer data for split {split!r} has an array named 'index'; that "
                    "name is reserved for sample positions. Rename the array."
                )
            values = np.asarray(values)
            if values.ndim == 0 or len(values) != len(self):
                got = "a scalar" if values.ndim == 0 else f"{len(values)} rows"
                raise TransferError(
                    f"Transfer data {name!r} for split {split!r} has {got}, but the "
                    f"{split!r} split has {len(self)} samples. The data must come from "
                    "a step with the same dataset options (split fractions, class filter, "
                    "subsets) and seed."
                )
            tensor = torch.as_tensor(values)
            if tensor.dtype == torch.float64:
                tensor = tensor.float()
            self.extras[name] = tensor
