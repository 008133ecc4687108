"""Functions written the way nnfabrik's examples and a lab's code write them.

Configs arrive as ``**config`` and are read with ``config.get``; the trainers
return tuples as ``output``; the checkpointing trainer speaks nnfabrik's
callback protocol (``cb(uid=..., epoch=..., model=..., state={"action": ...})``);
the data-generation step returns ``output["transfer_data"]`` and the
distillation dataset reads ``config["transfer_data"]["train"]``.  The data are
scikit-learn's 8x8 digits instead of MNIST, so nothing is downloaded.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

_DIGITS = None


def _digits():
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        data = load_digits()
        x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(data.target, dtype=torch.long)
        _DIGITS = (x[:400], y[:400], x[400:600], y[400:600])
    return _DIGITS


class _WithTargets(Dataset):
    """Images with given targets (the teacher's logits) in the dataset's own order."""

    def __init__(self, images, targets):
        self.images, self.targets = images, torch.as_tensor(np.asarray(targets))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.targets[index]


def digits_dataset_fn(seed, **config):
    np.random.seed(seed)
    x_train, y_train, x_test, y_test = _digits()
    if config.get("return_data_info"):
        return {"img_classification": {"input_dimensions": tuple(x_train.shape), "output_dimension": 10,
                                       "img_mean": x_train.mean(dim=0).numpy()}}
    if config.get("apply_augmentation"):
        x_train = torch.flip(x_train, dims=[3])
    batch_size = config.get("batch_size", 64)
    train = (
        _WithTargets(x_train, config["transfer_data"]["train"]) if "transfer_data" in config
        else TensorDataset(x_train, y_train)
    )
    generator = torch.Generator().manual_seed(seed)
    return {
        "train": DataLoader(train, batch_size=batch_size, shuffle=config.get("shuffle", True), generator=generator),
        "validation": DataLoader(TensorDataset(x_test, y_test), batch_size=batch_size),
        "test": DataLoader(TensorDataset(x_test, y_test), batch_size=batch_size),
    }


def digits_model_fn(dataloaders, seed, data_info=None, **config):
    if data_info is not None:
        in_dim = int(np.prod(data_info["img_classification"]["input_dimensions"][1:]))
    else:
        first_input, _ = next(iter(dataloaders["train"]))
        in_dim = int(np.prod(first_input.shape[1:]))
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, config.get("h_dim", 5)), nn.ReLU(),
                         nn.Linear(config.get("h_dim", 5), 10))


def _epoch(model, loader, optimizer, loss_fn):
    correct = total = 0
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        if y.dim() == 1:
            correct += (out.argmax(1) == y).sum().item()
        total += len(y)
    return 100.0 * correct / total


def digits_trainer_fn(model, dataloaders, seed, uid, cb, **config):
    """nnfabrik's example trainer: returns ``(last accuracy, (accuracies, epochs), state_dict)``."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.get("lr", 0.01))
    accs = [_epoch(model, dataloaders["train"], optimizer, nn.CrossEntropyLoss()) for _ in range(config.get("epochs", 2))]
    return accs[-1], (accs, config.get("epochs", 2)), model.state_dict()


def chkpt_trainer_fn(model, dataloaders, seed, uid, cb, **config):
    """A checkpointing trainer in the style of nnfabrik's ``mnist_checkpoint`` example.

    It restores with ``action="last"`` before training and saves after every
    epoch.  When the file named by ``NNF_TEST_INTERRUPT`` exists it is removed
    and the run stops with an error after ``interrupt_after`` epochs, as an
    interrupted notebook cell does; after the epoch named by
    ``NNF_TEST_SIGINT_AFTER`` it sends itself SIGINT (Ctrl-C) before saving;
    the epochs it ran are appended to the file named by ``NNF_TEST_EPOCH_LOG``.
    """
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.get("lr", 0.01))
    accs = []
    restored = {"action": "last", "maximize_score": True, "tracker": accs, "optimizer": optimizer}
    cb(uid=uid, epoch=-1, model=model, state=restored)
    start = restored.get("epoch", -1) + 1
    if "tracker" in restored and restored["tracker"] is not accs:
        accs = list(restored["tracker"])
    interrupt = Path(os.environ.get("NNF_TEST_INTERRUPT", "/nonexistent"))
    log = os.environ.get("NNF_TEST_EPOCH_LOG")
    for epoch in range(start, config.get("epochs", 4)):
        if interrupt.exists() and epoch == config.get("interrupt_after", 2):
            interrupt.unlink()
            raise RuntimeError(f"interrupted before epoch {epoch}")
        accs.append(_epoch(model, dataloaders["train"], optimizer, nn.CrossEntropyLoss()))
        if log:
            with open(log, "a") as file:
                file.write(f"{epoch}\n")
        if os.environ.get("NNF_TEST_SIGINT_AFTER") == str(epoch):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the checkpoint notebook's reader presses it
        cb(uid=uid, epoch=epoch, model=model,
           state={"action": "save", "score": accs[-1], "maximize_score": True, "tracker": accs,
                  "optimizer": optimizer, **config.get("chkpt_options", {})})
    return accs[-1], (accs, config.get("epochs", 4)), model.state_dict()


def data_gen_fn(model, dataloaders, seed, uid, cb, **config):
    """The pseudo-trainer of nnfabrik's distillation example: the model's logits on the training set, in order."""
    loader = dataloaders["train"]
    ordered = DataLoader(loader.dataset, batch_size=128, shuffle=False)
    with torch.no_grad():
        logits = torch.cat([model(x) for x, _ in ordered]).numpy()
    return 0.0, {"transfer_data": {"train": logits}}, model.state_dict()


def kd_trainer_fn(model, dataloaders, seed, uid, cb, **config):
    """Trains on the teacher's logits with an MSE loss; the score is the first epoch's start loss."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.get("lr", 0.01))
    loss_fn = nn.MSELoss()
    with torch.no_grad():
        start_loss = float(np.mean([loss_fn(model(x), y).item() for x, y in dataloaders["train"]]))
    losses = []
    for _ in range(config.get("epochs", 1)):
        total = 0.0
        for x, y in dataloaders["train"]:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total)
    return start_loss, (losses, config.get("epochs", 1)), model.state_dict()


def array_trainer_fn(model, dataloaders, seed, uid, cb, **config):
    """Returns numpy arrays, scalars and a non-string-keyed dict as output."""
    return np.float32(0.5), {"per_unit": np.arange(4, dtype=np.float32), "by_noise": {0.08: 1.0, -1: 2.0},
                             "best": np.int64(3)}, model.state_dict()


def measure_fn(model=None, dataloaders=None, per_unit=True, **kwargs):
    """A ScoringBase measure: per-class accuracy of ``model`` (or, without a model, class frequencies)."""
    hits = np.zeros(10)
    counts = np.zeros(10)
    for x, y in dataloaders:
        predicted = model(x).argmax(1).numpy() if model is not None else y.numpy()
        for label, guess in zip(y.numpy(), predicted):
            counts[label] += 1
            hits[label] += guess == label
    per_class = hits / np.maximum(counts, 1)
    return per_class if per_unit else float(per_class.mean())


def sinzlab_trainer_fn(model, dataloaders, seed, uid, cb, **config):
    """A trainer in the style of sinzlab nntransfer's: the whole trainer config as keywords, its
    ``main_loop_modules`` (sinzlab-style classes) run through nntransfer's loop."""
    from nntransfer.trainer.standard import standard_trainer

    modules = {}
    if config.get("main_loop_modules"):
        modules["nntransfer.legacy.modules.LegacyModules"] = {"modules": config["main_loop_modules"], "config": config}
    score, output, state = standard_trainer(model, dataloaders, seed, uid, cb, epochs=config.get("max_iter", 1),
                                            lr=config.get("lr", 0.01), modules=modules)
    return score, output, state


class OldNoiseAugmentation:
    """A main-loop module written for sinzlab's trainer: Gaussian noise on a share of the training batches.

    ``noise_std`` maps a standard deviation to its probability (-1: no noise), as sinzlab's configs do.
    """

    def __init__(self, trainer):
        self.config = trainer.config
        self.tracker = trainer.tracker
        self.generator = torch.Generator().manual_seed(trainer.seed)
        self.mode = None

    def pre_epoch(self, model, mode, **options):
        self.mode = mode

    def pre_forward(self, model, inputs, task_key, shared_memory):
        shared_memory["noised"] = False
        if self.mode == "Training" and self.config.noise_std:
            stds, probabilities = zip(*self.config.noise_std.items())
            std = stds[int(torch.multinomial(torch.tensor(probabilities), 1, generator=self.generator))]
            if std > 0:
                inputs = inputs + torch.randn(inputs.shape, generator=self.generator) * std
                shared_memory["noised"] = True
        return model, inputs

    def post_forward(self, outputs, loss, targets, **shared_memory):
        self.tracker.log_objective(len(targets) * shared_memory["noised"], (self.mode, "Noise", "noised"))
        self.tracker.log_objective(len(targets), (self.mode, "Noise", "normalization"))
        return outputs, loss, targets

    def post_backward(self, model):
        pass

    def post_optimizer(self, model):
        pass

    def post_epoch(self, model):
        pass


class OldWeightPenalty(OldNoiseAugmentation):
    """Adds ``l2 * sum(w**2)`` to the loss in post_forward, as sinzlab's loss-term modules did."""

    def __init__(self, trainer):
        super().__init__(trainer)
        self.model = trainer.model

    def pre_forward(self, model, inputs, task_key, shared_memory):
        return model, inputs

    def post_forward(self, outputs, loss, targets, **shared_memory):
        penalty = self.config.l2 * sum((p ** 2).sum() for p in self.model.parameters())
        self.tracker.log_objective(penalty.item(), (self.mode, "Penalty", "l2"))
        return outputs, loss + penalty, targets
