"""Fixed-size rows of a binary file, read one at a time: data larger than memory.

:class:`FileRows` stands in for a tensor ``(N, *row_shape)`` whose rows live
in a file (MNIST's idx files, a feature cache).  Indexing with an integer
reads that row with ``os.preadv``; indexing with an array of positions gives
another :class:`FileRows` over the same file, so the class filters, splits
and subsets of :mod:`nntransfer.datasets.selection` never load anything.

Reads go through the page cache, not through a memory map: pages of a map
count towards the process's resident memory as soon as they are touched,
which would let one epoch over a large file look like the whole file in
memory.  The file is opened lazily in each process, so the rows pickle into
DataLoader worker processes as a path and a few numbers.

:func:`write_rows` writes rows chunk by chunk to a new file (a feature cache),
so the caller never holds more than one chunk; that file is removed when the
last :class:`FileRows` over it is garbage-collected, or at exit.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Iterable

import numpy as np
import torch

from nntransfer.errors import DataError


class _OpenFile:
    """One file, opened once per process; removed with its owner when owned."""

    def __init__(self, path: str, owned: bool = False):
        self.path = path
        self._fd = None
        if owned:  # forked DataLoader workers inherit this finalizer; only the owning process removes
            weakref.finalize(self, _remove, path, os.getpid())

    def fd(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as error:
                raise DataError(f"cannot open {self.path!r} to read rows: {error}") from error
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    def __getstate__(self):
        return {"path": self.path}  # a worker's copy opens its own descriptor and never removes the file

    def __setstate__(self, state):
        self.path = state["path"]
        self._fd = None


def _remove(path: str, owner: int | None = None) -> None:
    if owner is not None and owner != os.getpid():
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class FileRows:
    """Rows ``(N, *row_shape)`` of ``dtype`` stored back to back in ``path`` from byte ``offset``."""

    def __init__(self, path: str, *, offset: int, count: int, row_shape: tuple, dtype, owned: bool = False):
        self._file = _OpenFile(str(path), owned)
        self.offset = int(offset)
        self.row_shape = tuple(int(d) for d in row_shape)
        self.dtype = np.dtype(dtype)
        if self.dtype not in _TORCH_DTYPES:
            raise DataError(f"rows of dtype {self.dtype} cannot be read; use float32 or uint8.")
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.positions = np.arange(int(count), dtype=np.int64)

    @property
    def path(self) -> str:
        return self._file.path

    @property
    def shape(self) -> tuple:
        return (len(self.positions), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) or (isinstance(key, torch.Tensor) and key.dim() == 0):
            return self._read(int(self.positions[int(key)]))
        subset = object.__new__(FileRows)
        subset.__dict__.update(self.__dict__)
        subset.positions = self.positions[np.asarray(key)]
        return subset

    def _read(self, position: int) -> torch.Tensor:
        buffer = bytearray(self.row_bytes)
        got = os.preadv(self._file.fd(), [buffer], self.offset + position * self.row_bytes)
        if got != self.row_bytes:
            raise DataError(
                f"{self.path!r} ends inside row {position} ({got} of {self.row_bytes} bytes); "
                "the file is truncated. Write it again."
            )
        return torch.frombuffer(buffer, dtype=_TORCH_DTYPES[self.dtype]).view(self.row_shape)

    def to_tensor(self) -> torch.Tensor:
        """All rows in memory, for small data and for tests."""
        if not len(self):
            return torch.empty(self.shape, dtype=_TORCH_DTYPES[self.dtype])
        return torch.stack([self[i] for i in range(len(self))])


_TORCH_DTYPES = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def write_rows(chunks: Iterable[np.ndarray], folder: str | None = None) -> FileRows:
    """Append each chunk ``(n, *row_shape)`` to a new file; return the rows, which own the file.

    The file lives in ``folder`` (default: the system's temporary folder) and
    is removed when the returned rows and every subset of them are gone.
    """
    handle, path = tempfile.mkstemp(dir=folder, prefix="nntransfer-rows-", suffix=".bin")
    count, row_shape, dtype = 0, None, None
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk)
                if row_shape is None:
                    row_shape, dtype = chunk.shape[1:], chunk.dtype
                    if dtype not in _TORCH_DTYPES:
                        raise DataError(f"rows of dtype {dtype} cannot be cached; use float32 or uint8.")
                elif chunk.shape[1:] != row_shape or chunk.dtype != dtype:
                    raise DataError(
                        f"a chunk of rows {chunk.shape[1:]} {chunk.dtype} follows rows {row_shape} {dtype}; "
                        "every row must have the same shape and type."
                    )
                file.write(memoryview(chunk).cast("B"))
                count += len(chunk)
    except BaseException:
        _remove(path)
        raise
    if row_shape is None:
        _remove(path)
        raise DataError("no rows to write: the data is empty.")
    return FileRows(path, offset=0, count=count, row_shape=row_shape, dtype=dtype, owned=True)
