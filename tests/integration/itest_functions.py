"""Dataset, model and trainer functions that the integration tests store by dotted path."""

from __future__ import annotations

import torch


def tiny_trainer(model, dataloaders, seed, uid=None, cb=None, *, steps: int = 2, lr: float = 0.1, state_floats: int = 0):
    """A few SGD steps; reports whether a database transaction was open meanwhile."""
    from nntransfer.db import import_datajoint

    in_transaction = import_datajoint().conn().in_transaction
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = dataloaders["train"]
    batches = iter(loader)
    for _ in range(steps):
        inputs, targets = next(batches)[:2]
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cb is not None:
            cb()
    correct = total = 0
    with torch.no_grad():
        for inputs, targets, *_ in dataloaders["validation"]:
            correct += (model(inputs).argmax(1) == targets).sum().item()
            total += len(targets)
    state = model.state_dict()
    if state_floats:
        state["padding"] = torch.zeros(state_floats)
    return correct / total, {"transaction_open_while_training": in_transaction, "steps": steps}, state


def failing_trainer(model, dataloaders, seed, uid=None, cb=None, *, message: str = "boom"):
    raise RuntimeError(message)


def data_trainer(model, dataloaders, seed, uid=None, cb=None):
    """Returns generated data, as a data-generation step does."""
    import numpy as np

    n = len(dataloaders["train"].dataset)
    return 0.0, {"transfer_data": {"train": {"logits": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}}}, model.state_dict()


def numpy_score_trainer(model, dataloaders, seed, uid=None, cb=None, *, score_type: str = "float32"):
    """Returns its score as a numpy float32 or a 0-d tensor, as a mean over a batch gives it."""
    import numpy as np

    score = np.float32(0.75) if score_type == "float32" else torch.tensor(0.75)
    return score, {}, model.state_dict()


def kwargs_trainer(model, dataloaders, seed, uid=None, cb=None, **config):
    """An nnfabrik-style trainer that takes any keyword."""
    return 0.0, {"config": config}, model.state_dict()


def counting_trainer(model, dataloaders, seed, uid=None, cb=None, *, log_file: str, steps: int = 2):
    """tiny_trainer that appends the trained key to ``log_file``, to count how often each key trains."""
    import json

    result = tiny_trainer(model, dataloaders, seed, uid=uid, cb=cb, steps=steps)
    with open(log_file, "a") as log:
        log.write(json.dumps({name: uid[name] for name in sorted(uid)}, default=int) + "\n")
    return result


def sleepy_standard_trainer(model, dataloaders, seed, uid=None, cb=None, *, epoch_sleep: float = 0.5, **config):
    """standard_trainer slowed down after each epoch, reporting the checkpoint it resumed from."""
    import time

    from nntransfer.trainer.standard import standard_trainer

    store = getattr(cb, "checkpoint_store", None)
    last = store.load("last") if store is not None else None

    class Slow:
        checkpoint_store = store

        def __call__(self, **info):
            if cb is not None:
                cb(**info)
            time.sleep(epoch_sleep)

    score, output, state = standard_trainer(model, dataloaders, seed, uid=uid, cb=Slow(), **config)
    output["resumed_from"] = None if last is None else int(last["epoch"])
    return score, output, state


def crash_once_trainer(model, dataloaders, seed, uid=None, cb=None, *, marker: str = "", crash_after: int = 2, **config):
    """standard_trainer that dies after epoch ``crash_after`` the first time (while ``marker`` does not exist)."""
    from pathlib import Path

    from nntransfer.trainer.standard import standard_trainer

    store = cb.checkpoint_store
    last = store.load("last")

    class Crashing:
        checkpoint_store = store

        def __call__(self, epoch=None, **info):
            cb(epoch=epoch, **info)
            if epoch == crash_after and not Path(marker).exists():
                Path(marker).touch()
                raise RuntimeError(f"node lost after epoch {epoch}")

    score, output, state = standard_trainer(model, dataloaders, seed, uid=uid, cb=Crashing(), **config)
    output["resumed_from"] = None if last is None else int(last["epoch"])
    return score, output, state


def visible_devices_trainer(model, dataloaders, seed, uid=None, cb=None, *, hold: float = 1.0):
    """Holds its job for ``hold`` seconds and reports the GPUs its process sees (CUDA_VISIBLE_DEVICES)."""
    import os
    import time

    time.sleep(hold)
    if cb is not None:
        cb()
    return 0.0, {"visible": os.environ.get("CUDA_VISIBLE_DEVICES")}, model.state_dict()
