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


def kwargs_trainer(model, dataloaders, seed, uid=None, cb=None, **config):
    """An nnfabrik-style trainer that takes any keyword."""
    return 0.0, {"config": config}, model.state_dict()
