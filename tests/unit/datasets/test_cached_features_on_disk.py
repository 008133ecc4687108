"""Cached features are written in chunks to a file and read back from it."""

import gc
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image

from nntransfer.datasets import cached_features
from nntransfer.datasets.cached_features import cached_feature_loaders
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.datasets.file_rows import FileRows
from nntransfer.datasets.vision import image_folder_dataset_fn
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.transfer.features import extract_features


def test_chunks_that_split_batches_give_the_features_in_dataset_order(monkeypatch, single_thread):
    loaders = digits_dataset_fn(0, batch_size=24, class_range=[0, 2])
    model = lenet5_model_fn(loaders, 0)
    row_bytes = 64 * 4  # LeNet-5's features of a digit: 64 floats
    monkeypatch.setattr(cached_features, "CHUNK_BYTES", 10 * row_bytes)  # 10 rows: chunks end inside batches
    cached = cached_feature_loaders(model, loaders, layer="features")
    for split in ("train", "validation", "test"):
        rows = cached[split].dataset.images
        assert isinstance(rows, FileRows) and rows.shape == (len(loaders[split].dataset), 64)
        expected = extract_features(model, loaders[split], layer="features")
        assert torch.allclose(rows.to_tensor(), torch.from_numpy(expected), atol=1e-6)


def test_the_cache_file_lives_in_the_temporary_folder_until_its_loaders_are_gone(monkeypatch, tmp_path, single_thread):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what TMPDIR sets when a process starts
    loaders = digits_dataset_fn(0, class_range=[0, 2])
    cached = cached_feature_loaders(lenet5_model_fn(loaders, 0), loaders, layer="features")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and all(name.startswith("nntransfer-rows-") for name in files)
    next(iter(cached["train"]))
    del cached
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_streamed_images_are_cached_through_the_loaders_workers(tmp_path, single_thread):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    loaders = image_folder_dataset_fn(0, root=str(tmp_path), image_size=8, batch_size=4, num_workers=2)
    model = lenet5_model_fn(loaders, 0)
    cached = cached_feature_loaders(model, loaders, layer="features")
    test = loaders["test"].dataset
    with torch.no_grad():
        expected = model.eval().features(torch.stack([test[i][0] for i in range(len(test))]))
    assert torch.allclose(cached["test"].dataset.images.to_tensor(), expected, atol=1e-6)
    assert torch.equal(cached["test"].dataset.labels, test.labels)


@pytest.mark.parametrize("batch_sizes", [[3, 3, 3], [7], [1, 9, 2]])
def test_in_chunks_keeps_every_row_once_in_order(batch_sizes):
    rows = np.arange(sum(batch_sizes) * 2, dtype=np.float32).reshape(-1, 2)
    batches, start = [], 0
    for size in batch_sizes:
        batches.append(rows[start : start + size])
        start += size
    chunks = [chunk.copy() for chunk in cached_features._in_chunks(iter(batches), chunk_bytes=4 * 2 * 4)]
    assert all(len(chunk) <= 4 for chunk in chunks)
    assert np.array_equal(np.concatenate(chunks), rows)
