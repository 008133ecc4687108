"""Random states of a run: seeding them, saving them, and finding the data pipeline's own.

A run is reproducible only if every generator it draws from is seeded, and a
resumed run continues exactly only if every one of them is restored.  The
loop seeds, checkpointing saves and restores, and distillation must read a
batch without moving any generator; all of them use the helpers here.
"""

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict:
    """Random states as tensors and plain values, loadable with weights_only=True."""
    bit_generator, key, pos, has_gauss, gauss = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"bit_generator": bit_generator, "key": key.tolist(), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict) -> None:
    """Set the global generators to what :func:`capture_rng` returned."""
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = rng["numpy"]
    np.random.set_state((
        numpy_state["bit_generator"],
        np.asarray(numpy_state["key"], dtype=np.uint32),
        numpy_state["pos"],
        numpy_state["has_gauss"],
        numpy_state["gauss"],
    ))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def data_generators(loaders: dict) -> dict[str, torch.Generator]:
    """The random generators that the data pipeline owns, by a stable name.

    A loader that shuffles with its own ``generator`` (as nntransfer's
    datasets do, so the order depends only on the seed) and a dataset that
    augments with its own generator do not use the global RNG; a resumed run
    must get their states back too, or it reshuffles as if from epoch 1.
    """
    found, seen = {}, set()
    for split, value in loaders.items():
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for key, loader in entries:
            prefix = split if key is None else f"{split}/{key}"
            candidates = {
                "loader": getattr(loader, "generator", None),
                "sampler": getattr(getattr(loader, "sampler", None), "generator", None),
                "dataset": getattr(getattr(loader, "dataset", None), "generator", None),
            }
            for name, generator in candidates.items():
                if isinstance(generator, torch.Generator) and id(generator) not in seen:
                    seen.add(id(generator))
                    found[f"{prefix}/{name}"] = generator
    return found
