"""The standard trainer function (nnfabrik's trainer contract).

Every option is a keyword argument with a JSON-able default, because the
trainer config class is derived from this signature.  The function carries
``check_config`` (:func:`nntransfer.trainer.options.check_trainer_config`),
so a config for it is checked when it is made: module, optimizer, loss and
metric names, and the options given to each.  Options added later
(``strategy``, ``devices``) default to None and are left out of the config's
hash while None (``standard_trainer.omitted_when_none``), so adding them
changed no existing config's hash.
"""

from typing import Literal

import torch

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer import distributed as ddp
from nntransfer.trainer.devices import resolve_device
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.options import check_trainer_config


def standard_trainer(
    model: torch.nn.Module,
    dataloaders: dict,
    seed: int,
    uid=None,
    cb=None,
    *,
    epochs: int = 10,
    optimizer: str = "adam",
    lr: float = 1e-3,
    optimizer_options: dict | None = None,
    loss: str = "cross_entropy",
    loss_options: dict | None = None,
    modules: dict | None = None,
    device: str = "auto",
    amp: bool | str = False,
    accumulation_steps: int = 1,
    validate_every: int = 1,
    nan_policy: str = "raise",
    pass_data_key: bool | None = None,
    final_splits: tuple = ("validation", "test"),
    score_metric: str = "validation.accuracy",
    strategy: Literal["ddp"] | None = None,
    devices: int | Literal["auto"] | None = None,
):
    """Train ``model`` and evaluate the returned model on ``final_splits``.

    Returns ``(score, output, model_state)``:

    * ``score``: ``score_metric`` of the returned model (after modules such as
      early stopping restored the best weights), from the final evaluation,
      e.g. ``"validation.accuracy"`` or ``"test.loss"``;
    * ``output``: ``{"history": {name: [value per epoch]}, "final": {metric:
      value}, "epochs": epochs trained, "optimizer_steps", "skipped_batches",
      "nonfinite_batches"}``; ``history`` has an ``"epoch"`` list and ``None``
      where an epoch did not measure a metric, so it plots directly;
    * ``model_state``: the returned model's state_dict on CPU.

    ``uid`` identifies the run to nnfabrik and is not used here; ``cb`` is
    called after every epoch and may bring a checkpoint store (see
    :mod:`nntransfer.trainer.checkpoints`).

    ``strategy="ddp"`` trains on ``devices`` processes (a number, or
    ``"auto"``: every GPU this process sees) with distributed data parallel,
    NCCL on GPUs and gloo on CPU; ``batch_size`` stays the global batch, and
    the result equals single-process training within floating-point
    rounding (see :mod:`nntransfer.trainer.distributed` for what differs).
    """
    splits = list(final_splits)
    missing = [split for split in splits if split not in dataloaders]
    if missing:
        raise TrainingError(
            f"final_splits names {missing}, but the dataloaders have {sorted(dataloaders)}; "
            "change final_splits."
        )
    options = dict(
        epochs=epochs, optimizer=optimizer, lr=lr, optimizer_options=optimizer_options, loss=loss,
        loss_options=loss_options, modules=modules, amp=amp, accumulation_steps=accumulation_steps,
        validate_every=validate_every, nan_policy=nan_policy, pass_data_key=pass_data_key,
        final_splits=splits, score_metric=score_metric,
    )
    if strategy is None:
        if devices is not None:
            raise ConfigError(f"devices={devices!r} needs strategy='ddp'; without a strategy one process trains.")
        return _train(model, dataloaders, seed, cb, device=device, **options)
    if strategy not in ddp.STRATEGIES:
        raise ConfigError(f"strategy must be one of {list(ddp.STRATEGIES)} or None, got {strategy!r}.")
    if nan_policy == "skip":  # refused by every rank's loop as well; here before any rank starts
        raise ConfigError(
            "nan_policy='skip' cannot run under ddp: one rank skipping a batch that the others train on "
            "would stall the gradient exchange. Use 'raise' or 'off'."
        )
    return ddp.run(_train, model, dataloaders, seed, cb, devices=devices, device=resolve_device(device), options=options)


def _train(
    model, dataloaders, seed, cb, *, distributed=None, device, epochs, optimizer, lr, optimizer_options, loss,
    loss_options, modules, amp, accumulation_steps, validate_every, nan_policy, pass_data_key, final_splits,
    score_metric,
):
    """One process's training and final evaluation (the whole run, or one rank of a DDP run)."""
    splits = final_splits
    loop = Loop(
        model,
        dataloaders,
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        optimizer_options=optimizer_options,
        loss=loss,
        loss_options=loss_options,
        modules=modules,
        device=device,
        amp=amp,
        accumulation_steps=accumulation_steps,
        validate_every=validate_every,
        seed=seed,
        nan_policy=nan_policy,
        pass_data_key=pass_data_key,
        cb=cb,
        distributed=distributed,
    )
    history = loop.fit()
    final = {}
    for split in splits:
        final.update(loop.evaluate(split))
    if score_metric not in final:
        raise TrainingError(
            f"score_metric {score_metric!r} was not measured; the final evaluation gave {sorted(final)}. "
            "Choose one of them (and list its split in final_splits)."
        )
    state = loop.state
    output = {
        "history": history,
        "final": final,
        "epochs": state.epoch,
        "optimizer_steps": state.optimizer_steps,
        "skipped_batches": state.skipped_batches,
        "nonfinite_batches": state.nonfinite_batches,
    }
    model_state = {name: value.detach().cpu().clone() for name, value in state.model.state_dict().items()}
    return final[score_metric], output, model_state


standard_trainer.check_config = check_trainer_config
standard_trainer.omitted_when_none = ("strategy", "devices")
