"""The main loop: epochs, batches, validation, final evaluation; no features.

Everything optional (early stopping, schedules, checkpoints, progress, ...)
lives in main-loop modules; the loop only dispatches the events of
:class:`~nntransfer.trainer.events.Event` to the modules that override them.
The per-batch path is kept as lean as a hand-written loop: metrics are summed
as tensors and read once per epoch, and events no module uses cost nothing.
"""

import math
from contextlib import nullcontext

import torch

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer.batches import count_batches, iterate_batches, unpack
from nntransfer.trainer.checkpoints import callback_store
from nntransfer.trainer.components import build_loss, build_optimizer
from nntransfer.trainer.control import (
    ALLOWED,
    LoopControl,
    SkipBatch,
    SkipOptimizerStep,
    StopEpoch,
    StopTraining,
    misplaced,
)
from nntransfer.trainer.devices import resolve_device, to_device
from nntransfer.trainer import interrupt
from nntransfer.trainer.learning_rates import learning_rates, reported_group
from nntransfer.trainer.module import EVENT_METHODS, MainLoopModule
from nntransfer.trainer.modules import build_modules, default_modules
from nntransfer.trainer.options import check_loop_options
from nntransfer.trainer.randomness import capture_rng, data_generators, restore_rng, seed_everything
from nntransfer.trainer.signatures import accepts_data_key, callback_caller
from nntransfer.trainer.state import State
from nntransfer.transfer.model_outputs import split_output

ONCE_PER_RUN = ("setup", "start", "finish", "teardown", "interrupt")


class _Tally:
    """Sums of loss, correct predictions and samples, kept as tensors until read."""

    __slots__ = ("loss", "correct", "count")

    def __init__(self):
        self.loss = None
        self.correct = None
        self.count = 0

    def add(self, loss, outputs, targets):
        if isinstance(targets, torch.Tensor):
            n = targets.shape[0] if targets.dim() else 1
        else:
            n = len(targets)
        loss = loss.detach() * n
        self.loss = loss if self.loss is None else self.loss + loss
        if (
            isinstance(outputs, torch.Tensor)
            and outputs.dim() == 2
            and isinstance(targets, torch.Tensor)
            and targets.dim() == 1
            and not targets.is_floating_point()
        ):
            correct = (outputs.argmax(1) == targets).sum()
            self.correct = correct if self.correct is None else self.correct + correct
        self.count += n

    def metrics(self, prefix: str) -> dict:
        if not self.count:
            return {}
        values = {f"{prefix}.loss": self.loss / self.count}
        if self.correct is not None:
            values[f"{prefix}.accuracy"] = self.correct / self.count
        return values


class Loop:
    """Train ``model`` on ``loaders`` with the given main-loop modules.

    The class is called ``Loop``, not ``Trainer``: ``Trainer`` is the table
    of trainer configs, and a trainer function such as
    :func:`~nntransfer.trainer.standard.standard_trainer` runs a Loop.

    ``loaders`` maps split -> DataLoader or dict of DataLoaders keyed by task.
    ``modules`` is a mapping ``name -> options`` (see
    :mod:`nntransfer.trainer.modules`) or a list of module instances; the
    registry's :func:`~nntransfer.trainer.modules.default_modules` join them.
    ``cb`` follows nnfabrik's contract: it is called after every epoch with
    the keywords it accepts among ``epoch`` and ``metrics``; a checkpoint
    store it carries goes to ``state.checkpoint_store`` (see
    :mod:`nntransfer.trainer.checkpoints`).

    ``nan_policy``: ``"raise"`` stops with TrainingError at a NaN/inf loss,
    ``"skip"`` skips such batches (counted in ``state.nonfinite_batches``);
    both read the loss once per batch (a device sync on CUDA).  ``"off"``
    does not look per batch; a NaN then shows in the epoch's loss.
    ``amp``: False, ``"fp16"`` (autocast + GradScaler, CUDA), ``"bf16"``
    (bfloat16 autocast, CPU or CUDA) or True (fp16 on CUDA, bf16 on CPU).
    ``distributed``: this process's :class:`~nntransfer.trainer.distributed.Distributed`
    in a DDP run (its loaders are sharded, training batches run through the
    DDP model, tallies are summed over the ranks), or None.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loaders: dict,
        *,
        epochs: int = 10,
        optimizer: str = "adam",
        lr: float = 1e-3,
        optimizer_options: dict | None = None,
        loss: str = "cross_entropy",
        loss_options: dict | None = None,
        modules=None,
        device="auto",
        amp=False,
        accumulation_steps: int = 1,
        validate_every: int = 1,
        seed: int | None = None,
        nan_policy: str = "raise",
        pass_data_key: bool | None = None,
        cb=None,
        distributed=None,
    ):
        if not isinstance(model, torch.nn.Module):
            raise TrainingError(f"the model must be a torch.nn.Module, got {type(model).__name__}.")
        if not isinstance(loaders, dict):
            raise TrainingError(
                "dataloaders must be a dict {'train': ..., 'validation': ..., 'test': ...}, "
                f"got {type(loaders).__name__}."
            )
        check_loop_options(
            epochs=epochs, accumulation_steps=accumulation_steps, validate_every=validate_every,
            nan_policy=nan_policy, amp=amp, optimizer=optimizer, optimizer_options=optimizer_options,
            loss=loss, loss_options=loss_options,
        )
        if epochs and "train" not in loaders:
            raise TrainingError(f"training needs a 'train' loader; the dataloaders have {sorted(loaders)}.")
        if distributed is not None:
            if nan_policy == "skip":
                raise ConfigError(
                    "nan_policy='skip' cannot run under ddp: one rank skipping a batch that the others train on "
                    "would stall the gradient exchange. Use 'raise' or 'off'."
                )
            loaders = distributed.shard(loaders)
        self.distributed = distributed

        self.device = resolve_device(device)
        self.optimizer_name = optimizer
        self.lr = lr
        self.optimizer_options = dict(optimizer_options or {})
        self.validate_every = validate_every
        self.seed = seed
        self.nan_policy = nan_policy
        self.cb = cb
        self._call_cb = callback_caller(cb)
        self._move = self.device.type != "cpu"
        self._non_blocking = self.device.type == "cuda"
        self._amp_dtype = self._amp_dtype_for(amp)
        self.pass_data_key = accepts_data_key(model) if pass_data_key is None else bool(pass_data_key)

        configured = build_modules(modules)
        self.state = State(
            model=model.to(self.device),
            loaders=loaders,
            device=self.device,
            max_epochs=epochs,
            seed=seed,
            loss_fn=build_loss(loss, loss_options),
            accumulation_steps=accumulation_steps,
            checkpoint_store=callback_store(cb),
        )
        self.modules = sorted(configured + default_modules(configured, self.state), key=lambda m: m.order)
        names = [m.name for m in self.modules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(
                f"main-loop modules must have distinct names (their state is checkpointed by name); "
                f"repeated: {duplicates}."
            )
        self.handlers = {
            event: [getattr(m, event) for m in self.modules if m.overrides(event)]
            for event in EVENT_METHODS + ONCE_PER_RUN
        }
        if self._amp_dtype is torch.float16:
            self.state.scaler = torch.amp.GradScaler("cuda")
        self.state.modules = self.modules
        self._net = self.state.model  # what training batches run through: the model, or its DDP wrapper
        self._fitted = False

    def _amp_dtype_for(self, amp):
        if amp is False:
            return None
        if amp == "fp16" or (amp is True and self.device.type == "cuda"):
            if self.device.type != "cuda":
                raise ConfigError("amp='fp16' needs a CUDA device; use amp='bf16' on CPU.")
            return torch.float16
        return torch.bfloat16

    def _autocast(self):
        if self._amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def describe(self) -> str:
        """A text table: for each hook, the modules that run there, in order."""
        rows = [("hook", "modules (in order)")]
        for hook in ("setup", "start", *EVENT_METHODS, "finish", "teardown"):
            names = [f"{m.name}({m.order})" for m in self.modules if m.overrides(hook)]
            rows.append((hook, ", ".join(names) or "-"))
        width = max(len(hook) for hook, _ in rows)
        lines = [f"{hook:<{width}}  {names}" for hook, names in rows]
        lines.insert(1, "-" * width + "  " + "-" * max(len(names) for _, names in rows))
        return "\n".join(lines)

    def module(self, name: str) -> MainLoopModule:
        """The configured module called ``name``."""
        for module in self.modules:
            if module.name == name:
                return module
        raise ConfigError(f"no main-loop module {name!r} in this loop; it has {[m.name for m in self.modules]}.")

    def fit(self) -> dict:
        """Train for the configured epochs (or until a module stops it); return the history."""
        if self._fitted:
            raise TrainingError("this Loop has already run; build a new one to train again.")
        self._fitted = True
        state = self.state
        try:
            if self.seed is not None:
                seed_everything(self.seed)
            self._run_hook("setup")
            params = state.param_groups
            if params is None:
                params = [p for p in state.model.parameters() if p.requires_grad]
            if state.max_epochs:
                state.optimizer = build_optimizer(self.optimizer_name, params, self.lr, self.optimizer_options)
                self._reported_group = reported_group(state.optimizer)
            self._run_hook("start")
            while state.epoch < state.max_epochs and not state.stop_requested:
                state.epoch += 1
                state.new_epoch()
                try:
                    self._run_hook("pre_epoch")
                except StopTraining:
                    state.stop_requested = True
                    state.epoch -= 1
                    break
                if self.distributed is not None:  # after pre_epoch, which may unfreeze parameters
                    self._net = self.distributed.wrap(state.model)
                self._train_epoch()
                if self._validation_due():
                    state.metrics.update(self._evaluate("validation", during_fit=True))
                    state.phase = "train"
                if state.optimizer is not None:
                    state.metrics.update(learning_rates(state.optimizer, self._reported_group))
                state.close_epoch()
                for handler in self.handlers["post_epoch"]:
                    try:
                        self._call(handler, "post_epoch")
                    except StopTraining:
                        state.stop_requested = True
                if interrupt.requested() and state.epoch < state.max_epochs and not state.stop_requested:
                    self._interrupt(None)  # a finished training goes on to its final evaluation and is stored
                if self._call_cb is not None:
                    self._call_cb(epoch=state.epoch, metrics=dict(state.metrics))
            self._run_hook("finish")
        finally:
            self._run_hook("teardown")
        return state.history

    def _call(self, handler, hook: str) -> None:
        """Call one module's ``hook``; a control exception it may not raise there becomes a TrainingError."""
        try:
            handler(self.state)
        except ALLOWED[hook]:
            raise
        except LoopControl as error:
            raise misplaced(handler, hook, error) from error

    def _run_hook(self, hook: str) -> None:
        """Call every module's ``hook`` in order (the once-per-run hooks and the epoch events).

        The batch events are dispatched inline instead, with the same check,
        so that they cost no extra call per batch.
        """
        for handler in self.handlers[hook]:
            self._call(handler, hook)

    def _validation_due(self) -> bool:
        state = self.state
        if "validation" not in state.loaders or not self.validate_every:
            return False
        return state.epoch % self.validate_every == 0 or state.epoch == state.max_epochs or state.stop_requested

    def _forward(self, key, batch, pre_forward, post_forward, data_key_kw) -> None:
        """One batch through pre_forward, the model, the loss and post_forward (training and evaluation).

        The control exceptions that ``pre_forward`` and ``post_forward`` may
        raise propagate to the caller's loop; any other becomes a TrainingError.
        """
        state = self.state
        state.data_key = key
        inputs, targets, extras = unpack(batch)
        if self._move:
            device, non_blocking = self.device, self._non_blocking
            inputs = to_device(inputs, device, non_blocking)
            targets = to_device(targets, device, non_blocking)
            if extras:
                extras = to_device(extras, device, non_blocking)
        state.inputs, state.targets, state.extras = inputs, targets, extras
        try:
            for handler in pre_forward:
                handler(state)
        except ALLOWED["pre_forward"]:
            raise
        except LoopControl as error:
            raise misplaced(handler, "pre_forward", error, state.phase) from error
        with self._autocast() if self._amp_dtype is not None else nullcontext():
            net = self._net if state.phase == "train" else state.model
            result = net(state.inputs, data_key=key) if data_key_kw else net(state.inputs)
            if type(result) is tuple:
                result, state.model_extras = split_output(result)
            state.outputs = result
            state.loss = state.loss_fn(result, state.targets)
        try:
            for handler in post_forward:
                handler(state)
        except ALLOWED["post_forward"]:
            raise
        except LoopControl as error:
            raise misplaced(handler, "post_forward", error, state.phase) from error

    def _train_epoch(self) -> None:
        state = self.state
        model, optimizer, scaler = state.model, state.optimizer, state.scaler
        pre_forward = self.handlers["pre_forward"]
        post_forward = self.handlers["post_forward"]
        post_backward = self.handlers["post_backward"]
        post_optimizer = self.handlers["post_optimizer"]
        loaders = state.loaders["train"]
        n_batches = count_batches(loaders)
        accumulation = state.accumulation_steps
        check = self.nan_policy != "off"
        data_key_kw = self.pass_data_key and isinstance(loaders, dict)
        tally = _Tally()
        pending = 0
        state.phase = "train"
        model.train()
        batches, first, epoch_start = self._epoch_batches(loaders, tally)
        requested = interrupt.requested
        for state.batch_index, (key, batch) in enumerate(batches, first):
            unscaled = False
            try:
                self._forward(key, batch, pre_forward, post_forward, data_key_kw)
                loss = state.loss
                if check and not math.isfinite(loss.item()):
                    self._nonfinite(loss)
                pending += 1
                state.is_step = pending == accumulation or state.batch_index + 1 == n_batches
                scaled = loss / accumulation if accumulation > 1 else loss
                if self.distributed is not None:
                    weight = self.distributed.loss_weight(state.batch_index)
                    scaled = scaled * weight if weight != 1.0 else scaled
                if scaler is not None:
                    scaler.scale(scaled).backward()
                    if state.is_step and post_backward:
                        scaler.unscale_(optimizer)
                        unscaled = True
                else:
                    scaled.backward()
                try:
                    for handler in post_backward:
                        handler(state)
                except ALLOWED["post_backward"]:
                    raise
                except LoopControl as error:
                    raise misplaced(handler, "post_backward", error) from error
                tally.add(loss, state.outputs, state.targets)
                if state.is_step:
                    self._step(optimizer, scaler)
                    pending = 0
                    try:
                        for handler in post_optimizer:
                            handler(state)
                    except ALLOWED["post_optimizer"]:
                        raise
                    except LoopControl as error:
                        raise misplaced(handler, "post_optimizer", error) from error
            except SkipBatch:
                optimizer.zero_grad(set_to_none=True)
                pending = 0
                state.skipped_batches += 1
            except SkipOptimizerStep:
                optimizer.zero_grad(set_to_none=True)
                if unscaled:  # the scaler expects an update after unscale_; without one it has nothing to update
                    scaler.update()
                pending = 0
                state.skipped_steps += 1
                tally.add(state.loss, state.outputs, state.targets)
            except StopEpoch:
                optimizer.zero_grad(set_to_none=True)
                pending = 0
                break
            except StopTraining:
                optimizer.zero_grad(set_to_none=True)
                pending = 0
                state.stop_requested = True
                break
            if not pending and requested():
                self._interrupt(self._partial_epoch(epoch_start, state.batch_index + 1, tally))
        if pending:  # the loader ended between two steps (it has no length to foresee that)
            self._step(optimizer, scaler)
            try:
                for handler in post_optimizer:
                    self._call(handler, "post_optimizer")
            except StopEpoch:
                pass  # every batch of the epoch was read already
            except StopTraining:
                state.stop_requested = True
        if self.distributed is not None:
            self.distributed.reduce_tally(tally)
            self.distributed.reduce_sums(state._sums, "train.")
        state.metrics.update(tally.metrics("train"))
        state.is_step = False

    def _epoch_batches(self, loaders, tally):
        """``(batches, index of the first, random states at the epoch's start)`` of a training epoch.

        An epoch that a signal interrupted (``state.partial_epoch``, restored
        by checkpointing) is continued: the random states of its start are
        restored, so the loaders draw the same order, the batches trained
        before the interruption are read and skipped, and the random states,
        the epoch's running sums and metrics of the interruption are put back,
        so the run goes on as if it had never stopped.
        """
        state = self.state
        partial, state.partial_epoch = state.partial_epoch, None
        generators = data_generators(state.loaders)
        if partial is not None:
            _restore_states(partial["start_rng"], partial["start_data_rng"], generators)
        epoch_start = (capture_rng(), {name: generator.get_state() for name, generator in generators.items()})
        batches = iterate_batches(loaders)
        if partial is None:
            return batches, 0, epoch_start
        for _ in range(partial["batches"]):
            next(batches)
        _restore_states(partial["rng"], partial["data_rng"], generators)
        tally.loss, tally.correct, tally.count = partial["tally"]
        state._sums.update({name: list(entry) for name, entry in partial["sums"].items()})
        state.metrics.update(partial["metrics"])
        return batches, partial["batches"], epoch_start

    def _partial_epoch(self, epoch_start, batches: int, tally) -> dict:
        """What resuming the current epoch after its first ``batches`` batches needs (see :meth:`_epoch_batches`)."""
        state = self.state
        return {
            "batches": batches,
            "start_rng": epoch_start[0],
            "start_data_rng": epoch_start[1],
            "rng": capture_rng(),
            "data_rng": {name: generator.get_state() for name, generator in data_generators(state.loaders).items()},
            "tally": [tally.loss, tally.correct, tally.count],
            "sums": {name: list(entry) for name, entry in state._sums.items()},
            "metrics": dict(state.metrics),
        }

    def _interrupt(self, partial) -> None:
        """Stop for a signal: the modules' ``interrupt`` hooks save what resuming needs, then :class:`Interrupted`.

        ``partial`` describes the epoch in progress (None at the end of an
        epoch); see :mod:`nntransfer.trainer.interrupt`.
        """
        state = self.state
        state.partial_epoch = partial
        for handler in self.handlers["interrupt"]:  # no control table: there is nothing left to steer
            handler(state)
        where = f"after batch {partial['batches']} of epoch {state.epoch}" if partial else f"after epoch {state.epoch}"
        raise interrupt.Interrupted(f"{interrupt.signal_name() or 'a stop request'} received: training stopped {where}")

    def _step(self, optimizer, scaler) -> None:
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.state.optimizer_steps += 1

    def _nonfinite(self, loss) -> None:
        state = self.state
        if self.nan_policy == "skip":
            state.nonfinite_batches += 1
            raise SkipBatch
        where = f"epoch {state.epoch}, batch {state.batch_index}"
        if state.data_key is not None:
            where += f" (data key {state.data_key!r})"
        raise TrainingError(
            f"the training loss is {loss.detach().float().mean().item()} at {where}. "
            "Lower the learning rate, check the inputs for NaN/inf, add gradient clipping, "
            "or pass nan_policy='skip' to skip such batches."
        )

    def _evaluate(self, split: str, during_fit: bool = False) -> dict:
        """Loss and accuracy on ``split`` (overall, and per data key for a dict of loaders).

        ``during_fit``: this is the validation of a training epoch, so a
        module's StopTraining also ends training (see
        :mod:`nntransfer.trainer.control`); otherwise it only ends this evaluation.
        """
        state = self.state
        loaders = state.loaders[split]
        model = state.model
        pre_forward, post_forward = self.handlers["pre_forward"], self.handlers["post_forward"]
        is_dict = isinstance(loaders, dict)
        data_key_kw = self.pass_data_key and is_dict
        total = _Tally()
        per_key = {key: _Tally() for key in loaders} if is_dict and len(loaders) > 1 else {}
        state.phase = split
        if self.distributed is not None:
            self.distributed.sync_buffers(model)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for state.batch_index, (key, batch) in enumerate(iterate_batches(loaders)):
                try:
                    self._forward(key, batch, pre_forward, post_forward, data_key_kw)
                except SkipBatch:
                    continue
                except StopEpoch:
                    break
                except StopTraining:
                    if during_fit:
                        state.stop_requested = True
                    break
                total.add(state.loss, state.outputs, state.targets)
                if per_key:
                    per_key[key].add(state.loss, state.outputs, state.targets)
        model.train(was_training)
        if self.distributed is not None:
            self.distributed.reduce_tally(total)
            self.distributed.reduce_sums(state._sums, f"{split}.")
        metrics = total.metrics(split)
        for key, tally in per_key.items():
            metrics.update(tally.metrics(f"{split}.{key}"))
        prefix = f"{split}."
        for name in [name for name in state._sums if name.startswith(prefix)]:
            value, weight = state._sums.pop(name)
            metrics[name] = value / weight if weight else None
        return metrics

    def evaluate(self, split: str) -> dict:
        """Metrics of the current model on ``split`` as plain floats (``"<split>.loss"``, ...)."""
        if split not in self.state.loaders:
            raise TrainingError(f"no {split!r} loader; the dataloaders have {sorted(self.state.loaders)}.")
        metrics = self._evaluate(split)
        return {name: _to_float(value) for name, value in metrics.items()}


def _restore_states(rng: dict, data_rng: dict, generators: dict) -> None:
    restore_rng(rng)
    for name, generator_state in data_rng.items():
        if name in generators:
            generators[name].set_state(generator_state)


def _to_float(value):
    if isinstance(value, torch.Tensor):
        return value.item()
    return value
