"""Image files decoded one at a time: image folders of any size.

:class:`ImageFiles` stands in for a ``uint8`` tensor ``(N, C, S, S)`` of
images resized to ``S x S``: indexing with an integer opens, converts and
resizes that file; indexing with an array of positions gives another
:class:`ImageFiles` over the same paths.  So an image folder is scanned once
(names only), split and filtered by label, and decoded in the DataLoader's
worker processes, one batch ahead of training.

The paths are kept as one byte string with end offsets rather than a list of
Python strings: worker processes touch a list's reference counts on every
read, which copies its pages into each worker (a known cause of memory growth
with 10^6 files), while one bytes object stays shared.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from nntransfer.errors import DataError


class ImageFiles:
    """Files ``paths``, each read as a ``(C, image_size, image_size)`` uint8 tensor (C=1 if ``grayscale``)."""

    ndim = 4

    def __init__(self, paths: Sequence[str], image_size: int, grayscale: bool = False):
        encoded = [os.fsencode(path) for path in paths]
        self._names = b"".join(encoded)
        self._ends = np.cumsum([len(name) for name in encoded], dtype=np.int64)
        self.image_size = int(image_size)
        self.mode = "L" if grayscale else "RGB"
        self.positions = np.arange(len(encoded), dtype=np.int64)

    @property
    def shape(self) -> tuple:
        channels = 1 if self.mode == "L" else 3
        return (len(self.positions), channels, self.image_size, self.image_size)

    def __len__(self) -> int:
        return len(self.positions)

    def path(self, index: int) -> str:
        position = int(self.positions[index])
        start = int(self._ends[position - 1]) if position else 0
        return os.fsdecode(self._names[start : int(self._ends[position])])

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) or (isinstance(key, torch.Tensor) and key.dim() == 0):
            return self.decode(self.path(int(key)))
        subset = object.__new__(ImageFiles)
        subset.__dict__.update(self.__dict__)
        subset.positions = self.positions[np.asarray(key)]
        return subset

    def decode(self, path: str) -> torch.Tensor:
        """One file as a ``(C, S, S)`` uint8 tensor: converted to the mode, then resized (bilinear)."""
        try:
            with Image.open(path) as image:
                resized = image.convert(self.mode).resize((self.image_size, self.image_size), Image.BILINEAR)
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"cannot read image {path!r}: {error}. Replace or remove the file.") from error
        array = torch.from_numpy(np.array(resized, dtype=np.uint8))
        return array.unsqueeze(0) if self.mode == "L" else array.permute(2, 0, 1)
