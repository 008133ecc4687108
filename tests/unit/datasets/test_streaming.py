"""Image folders and idx files read from disk by the loaders' workers, and row files written in chunks."""

import gc
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from nntransfer.datasets import loaders as loaders_module
from nntransfer.datasets.file_rows import FileRows, write_rows
from nntransfer.datasets.files import read_image_folder
from nntransfer.datasets.image_files import ImageFiles
from nntransfer.datasets.loaders import build_image_loaders
from nntransfer.datasets.vision import image_folder_dataset_fn, mnist_dataset_fn
from nntransfer.errors import ConfigError, DataError

CLASSES = ("ant", "bee", "cow")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """30 images of varying sizes and formats, 10 per class."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir()
        for i in range(10):
            array = rng.integers(0, 256, (12 + i, 9 + i, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def _batches(loader):
    return [tuple(part.clone() if isinstance(part, torch.Tensor) else part for part in batch) for batch in loader]


def _decoded(root, size):
    """The folder decoded into memory, as the reader did before it streamed."""
    files, labels, _ = read_image_folder(str(root), size, grayscale=False)
    return torch.stack([files[i] for i in range(len(files))]), labels


def test_streamed_folder_gives_the_batches_of_the_same_images_in_memory(folder):
    images, labels = _decoded(folder, 8)
    options = dict(scale=1 / 255, batch_size=4, augmentation={"shift": 1}, classes=[0, 2])
    in_memory = build_image_loaders(3, images, labels, **options)
    files, _, _ = read_image_folder(str(folder), 8, grayscale=False)
    streamed = build_image_loaders(3, files, labels, **options)
    for split in ("train", "validation", "test"):
        expected, got = _batches(in_memory[split]), _batches(streamed[split])
        assert len(expected) == len(got)
        for (x1, y1), (x2, y2) in zip(expected, got):
            assert torch.equal(y1, y2)
            assert torch.allclose(x1, x2, atol=1e-5)  # statistics summed in another order


def _same_epochs(a, b, epochs):
    for _ in range(epochs):
        for (x1, y1), (x2, y2) in zip(_batches(a), _batches(b), strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_workers_and_prefetching_give_the_same_batches(folder):
    plain = image_folder_dataset_fn(1, root=str(folder), image_size=8, batch_size=4)
    workers = image_folder_dataset_fn(1, root=str(folder), image_size=8, batch_size=4, num_workers=2, prefetch_factor=3)
    assert workers["train"].prefetch_factor == 3
    for split in ("train", "validation", "test"):
        _same_epochs(plain[split], workers[split], epochs=2)
    assert plain["train"].dataset.class_names == list(CLASSES)


def test_persistent_workers_shuffle_later_epochs_their_own_way_but_repeatably(folder):
    def persistent():
        return image_folder_dataset_fn(1, root=str(folder), image_size=8, batch_size=4, num_workers=2, persistent_workers=True)

    first, second = persistent(), persistent()
    assert first["train"].persistent_workers
    _same_epochs(first["train"], second["train"], epochs=2)
    plain = image_folder_dataset_fn(1, root=str(folder), image_size=8, batch_size=4)
    _same_epochs(plain["train"], persistent()["train"], epochs=1)
    _same_epochs(first["validation"], plain["validation"], epochs=2)


def test_images_are_read_when_a_batch_needs_them(tmp_path):
    for name in CLASSES:
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (6, 6), (i, 0, 0)).save(tmp_path / name / f"{i}.png")
    loaders = image_folder_dataset_fn(0, root=str(tmp_path), image_size=4, batch_size=50, normalize=False)
    test = loaders["test"].dataset
    victim = test.images.path(0)
    os.remove(victim)
    with pytest.raises(DataError, match="cannot read image") as error:
        next(iter(loaders["test"]))
    assert victim in str(error.value)


def test_a_corrupt_file_is_named(tmp_path):
    for name in CLASSES:
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (6, 6)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "bee" / "3.png").write_bytes(b"\x89PNG but not really")
    files, _, _ = read_image_folder(str(tmp_path), 4, grayscale=True)
    position = [files.path(i) for i in range(len(files))].index(str(tmp_path / "bee" / "3.png"))
    with pytest.raises(DataError, match="bee/3.png"):
        files[position]


def test_statistics_of_large_data_come_from_a_fixed_sample(folder, monkeypatch):
    monkeypatch.setattr(loaders_module, "STATISTICS_SAMPLE", 5)
    files, _, _ = read_image_folder(str(folder), 8, grayscale=False)
    mean, std = loaders_module.channel_statistics(files, 1 / 255)
    again = loaders_module.channel_statistics(files, 1 / 255, num_workers=2)
    assert torch.allclose(mean, again[0]) and torch.allclose(std, again[1])
    chosen = np.sort(np.random.default_rng(0).choice(len(files), 5, replace=False))
    sample = torch.stack([files[int(i)] for i in chosen]).double() / 255
    assert torch.allclose(mean.flatten().double(), sample.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.flatten().double(), sample.transpose(0, 1).reshape(3, -1).std(dim=1), atol=1e-6)


def test_a_pretrained_backbones_normalisation_can_be_given(folder):
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    loaders = image_folder_dataset_fn(0, root=str(folder), image_size=8, normalize=imagenet)
    dataset = loaders["test"].dataset
    raw = dataset.images[0].float() / 255
    expected = (raw - torch.tensor(imagenet["mean"]).view(3, 1, 1)) / torch.tensor(imagenet["std"]).view(3, 1, 1)
    assert torch.allclose(dataset[0][0], expected, atol=1e-6)
    with pytest.raises(ConfigError, match="one mean and one positive std per image channel"):
        image_folder_dataset_fn(0, root=str(folder), image_size=8, normalize={"mean": [0.5], "std": [0.2]})
    with pytest.raises(ConfigError, match="must be True, False or"):
        image_folder_dataset_fn(0, root=str(folder), image_size=8, normalize={"mean": [0.5, 0.5, 0.5]})


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"persistent_workers": True}, "`persistent_workers` applies to loader worker processes"),
        ({"prefetch_factor": 2}, "`prefetch_factor` applies"),
        ({"num_workers": 1, "prefetch_factor": 0}, "`prefetch_factor` must be a positive integer"),
    ],
)
def test_worker_options_without_workers_are_refused(folder, options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        image_folder_dataset_fn(0, root=str(folder), image_size=8, **options)


def test_transfer_data_stays_aligned_with_streamed_shuffled_batches(folder):
    loaders = image_folder_dataset_fn(0, root=str(folder), image_size=8, batch_size=4, return_index=True)
    files = loaders["train"].dataset.images
    # a per-sample value computed from the file itself: the first pixel of each image
    first_pixels = np.array([files[i][0, 0, 0].item() for i in range(len(files))], dtype=np.int64)
    loaders = image_folder_dataset_fn(
        0, root=str(folder), image_size=8, batch_size=4, num_workers=2,
        transfer_data={"train": {"pixel": first_pixels}},
    )
    seen = 0
    for x, _, extras in loaders["train"]:
        dataset = loaders["train"].dataset
        raw = torch.stack([dataset.images[int(i)][0, 0, 0] for i in extras["index"]]).long()
        assert torch.equal(extras["pixel"], raw)
        seen += len(x)
    assert seen == len(files)


def _write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def test_idx_images_are_read_from_the_file(tmp_path):
    rng = np.random.default_rng(1)
    images = {prefix: rng.integers(0, 256, (100, 28, 28), dtype=np.uint8) for prefix in ("train", "t10k")}
    labels = np.tile(np.arange(10, dtype=np.uint8), 10)
    for prefix, array in images.items():
        _write_idx(tmp_path / "MNIST" / "raw", prefix, array, labels)
    loaders = mnist_dataset_fn(0, root=str(tmp_path), normalize=False, num_workers=2)
    test = loaders["test"].dataset
    assert isinstance(test.images, FileRows)
    assert torch.equal(test.images.to_tensor(), torch.from_numpy(images["t10k"]).unsqueeze(1))
    x, _ = next(iter(loaders["test"]))
    assert torch.allclose(x, torch.from_numpy(images["t10k"][: len(x)]).unsqueeze(1).float() / 255)

    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated"):
        mnist_dataset_fn(0, root=str(tmp_path))
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="not an idx file"):
        mnist_dataset_fn(0, root=str(tmp_path))


def test_rows_written_in_chunks_read_back_in_workers_and_the_file_goes_with_them(tmp_path):
    chunks = [np.arange(i * 12, (i + 1) * 12, dtype=np.float32).reshape(4, 3) for i in range(3)]
    rows = write_rows(iter(chunks), folder=str(tmp_path))
    path = rows.path
    assert rows.shape == (12, 3)
    assert torch.equal(rows.to_tensor(), torch.from_numpy(np.concatenate(chunks)))
    subset = rows[np.array([5, 1])]
    assert torch.equal(subset[0], torch.tensor([15.0, 16.0, 17.0]))
    del rows
    gc.collect()
    read = list(torch.utils.data.DataLoader(subset, batch_size=1, num_workers=2))  # forked workers exit
    assert torch.equal(torch.cat(read), torch.tensor([[15.0, 16.0, 17.0], [3.0, 4.0, 5.0]]))
    assert os.path.exists(path)
    del subset
    gc.collect()
    assert not os.path.exists(path)


def test_rows_of_different_shapes_are_refused_and_leave_no_file(tmp_path):
    with pytest.raises(DataError, match="same shape"):
        write_rows([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)], folder=str(tmp_path))
    with pytest.raises(DataError, match="empty"):
        write_rows([], folder=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_paths_are_kept_as_one_byte_string():
    files = ImageFiles([f"/data/class_{i % 7}/image_{i:07d}.jpg" for i in range(100_000)], 32)
    assert isinstance(files._names, bytes) and files.path(99_999) == "/data/class_4/image_0099999.jpg"
    assert files[np.arange(10, 20)].path(0) == "/data/class_3/image_0000010.jpg"
