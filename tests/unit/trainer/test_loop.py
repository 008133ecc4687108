import logging
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ConfigError, DataError, FunctionResolutionError, TrainingError
from nntransfer.trainer.control import SkipBatch, SkipOptimizerStep, StopEpoch, StopTraining
from nntransfer.trainer.events import Event
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule


class Recorder(MainLoopModule):
    name = "recorder"

    def __init__(self):
        self.calls = []

    def setup(self, state):
        self.calls.append(("setup", state.optimizer is None))

    def start(self, state):
        self.calls.append(("start", state.optimizer is not None))

    def finish(self, state):
        self.calls.append(("finish",))

    def teardown(self, state):
        self.calls.append(("teardown",))

    def pre_epoch(self, state):
        self.calls.append(("pre_epoch", state.epoch))

    def pre_forward(self, state):
        self.calls.append(("pre_forward", state.phase))

    def post_forward(self, state):
        self.calls.append(("post_forward", state.phase))

    def post_backward(self, state):
        self.calls.append(("post_backward", state.phase))

    def post_optimizer(self, state):
        self.calls.append(("post_optimizer", state.phase))

    def post_epoch(self, state):
        self.calls.append(("post_epoch", sorted(state.metrics)))


def one_batch_loaders():
    data = TensorDataset(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    loader = DataLoader(data, batch_size=4)
    return {"train": loader, "validation": loader, "test": loader}


def test_events_fire_in_loop_order(model):
    recorder = Recorder()
    trainer = Loop(model, one_batch_loaders(), epochs=1, modules=[recorder], device="cpu")
    trainer.fit()
    trainer.evaluate("test")
    assert [call[0] for call in recorder.calls] == [
        "setup", "start", "pre_epoch",
        "pre_forward", "post_forward", "post_backward", "post_optimizer",
        "pre_forward", "post_forward", "post_epoch", "finish", "teardown",
        "pre_forward", "post_forward",
    ]
    assert recorder.calls[0] == ("setup", True)
    assert recorder.calls[1] == ("start", True)
    assert [call[1] for call in recorder.calls[3:9]] == ["train"] * 4 + ["validation"] * 2
    assert "validation.accuracy" in recorder.calls[9][1]
    assert [call[1] for call in recorder.calls[-2:]] == ["test", "test"]
    assert [event.value for event in Event] == [
        "pre_epoch", "pre_forward", "post_forward", "post_backward", "post_optimizer", "post_epoch"
    ]


def test_only_overridden_events_are_dispatched(model, loaders):
    class OnlyEpochs(MainLoopModule):
        name = "only_epochs"

        def post_epoch(self, state):
            pass

    trainer = Loop(model, loaders, epochs=1, modules=[OnlyEpochs()], device="cpu")
    assert len(trainer.handlers["post_epoch"]) == 1
    assert all(not trainer.handlers[e.value] for e in Event if e is not Event.POST_EPOCH)
    table = trainer.describe()
    assert "post_epoch" in table and "only_epochs(500)" in table


def test_modules_run_by_order_then_given_order(model, loaders):
    seen = []

    def module(label, order):
        cls = type(label, (MainLoopModule,), {"name": label, "order": order,
                                              "pre_epoch": lambda self, state: seen.append(label)})
        return cls()

    Loop(model, loaders, epochs=1, device="cpu",
         modules=[module("late", 700), module("first_tie", 10), module("second_tie", 10)]).fit()
    assert seen == ["first_tie", "second_tie", "late"]


def test_metrics_match_a_manual_computation(model, loaders):
    trainer = Loop(model, loaders, epochs=1, device="cpu", seed=0)
    trainer.fit()
    metrics = trainer.evaluate("validation")
    inputs, targets = loaders["validation"].dataset.tensors
    with torch.no_grad():
        outputs = model(inputs)
    assert metrics["validation.loss"] == pytest.approx(torch.nn.functional.cross_entropy(outputs, targets).item(), rel=1e-5)
    assert metrics["validation.accuracy"] == pytest.approx((outputs.argmax(1) == targets).float().mean().item())


def test_history_is_aligned_and_validation_every_n(model, loaders):
    history = Loop(model, loaders, epochs=3, validate_every=2, device="cpu").fit()
    assert history["epoch"] == [1, 2, 3]
    assert history["validation.loss"][0] is None and history["validation.loss"][1] is not None
    assert history["validation.loss"][2] is not None  # the last epoch is always validated
    assert all(len(values) == 3 for values in history.values())


def test_same_seed_gives_same_run(make_model, make_loaders):
    a = Loop(make_model(dropout=0.3), make_loaders(), epochs=2, seed=5, device="cpu").fit()
    b = Loop(make_model(dropout=0.3), make_loaders(), epochs=2, seed=5, device="cpu").fit()
    c = Loop(make_model(dropout=0.3), make_loaders(), epochs=2, seed=6, device="cpu").fit()
    assert a == b
    assert a != c


class Raiser(MainLoopModule):
    name = "raiser"

    def __init__(self, event, exception, when=lambda state: True):
        self.event, self.exception, self.when = event, exception, when
        self.raised = 0

    def _maybe(self, event, state):
        if event == self.event and state.phase == "train" and self.when(state):
            self.raised += 1
            raise self.exception

    def pre_epoch(self, state):
        if self.event == "pre_epoch" and self.when(state):
            raise self.exception

    def pre_forward(self, state):
        self._maybe("pre_forward", state)

    def post_forward(self, state):
        self._maybe("post_forward", state)

    def post_backward(self, state):
        self._maybe("post_backward", state)

    def post_epoch(self, state):
        if self.event == "post_epoch" and self.when(state):
            raise self.exception


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_skip_batch_skips_step_and_metrics(model, loaders):
    before = params_of(model)
    trainer = Loop(model, loaders, epochs=1, device="cpu", modules=[Raiser("post_backward", SkipBatch)])
    history = trainer.fit()
    assert same(before, params_of(model))
    assert trainer.state.skipped_batches == 6 and trainer.state.optimizer_steps == 0
    assert "train.loss" not in history


def test_skip_optimizer_step_keeps_weights_but_counts_metrics(model, loaders):
    before = params_of(model)
    trainer = Loop(model, loaders, epochs=1, device="cpu", modules=[Raiser("post_backward", SkipOptimizerStep)])
    history = trainer.fit()
    assert same(before, params_of(model))
    assert trainer.state.skipped_steps == 6
    assert history["train.loss"][0] is not None


def test_skip_optimizer_step_between_accumulated_batches_with_a_grad_scaler(model, loaders):
    """The fp16 path of the loop, driven on CPU by a CPU GradScaler in place of the CUDA one."""

    class SkipFirstBatch(MainLoopModule):
        name = "skip_first_batch"

        def post_backward(self, state):
            if state.batch_index == 0:  # not a step batch: nothing was unscaled yet
                raise SkipOptimizerStep

    trainer = Loop(model, loaders, epochs=1, device="cpu", accumulation_steps=2, modules=[SkipFirstBatch()])
    trainer.state.scaler = torch.amp.GradScaler("cpu")
    trainer.fit()
    assert (trainer.state.skipped_steps, trainer.state.optimizer_steps) == (1, 3)


def test_stop_epoch_ends_the_epoch_but_validation_runs(model, loaders):
    raiser = Raiser("pre_forward", StopEpoch, when=lambda state: state.batch_index == 2)
    trainer = Loop(model, loaders, epochs=2, device="cpu", modules=[raiser])
    history = trainer.fit()
    assert trainer.state.optimizer_steps == 4  # two batches in each of two epochs
    assert history["epoch"] == [1, 2] and None not in history["validation.loss"]


def test_stop_training_from_a_batch_event(model, loaders):
    raiser = Raiser("post_forward", StopTraining, when=lambda state: state.epoch == 2 and state.batch_index == 1)
    trainer = Loop(model, loaders, epochs=5, device="cpu", modules=[raiser])
    history = trainer.fit()
    assert history["epoch"] == [1, 2]
    assert trainer.state.optimizer_steps == 6 + 1


def test_stop_training_from_post_epoch_lets_later_modules_run(model, loaders):
    after = Recorder()
    after.order = 900
    raiser = Raiser("post_epoch", StopTraining)
    trainer = Loop(model, loaders, epochs=5, device="cpu", modules=[raiser, after])
    trainer.fit()
    assert trainer.state.epoch == 1
    assert [call[0] for call in after.calls].count("post_epoch") == 1
    assert after.calls[-2:] == [("finish",), ("teardown",)]


def test_stop_training_from_pre_epoch_runs_no_epoch(model, loaders):
    before = params_of(model)
    trainer = Loop(model, loaders, epochs=3, device="cpu", modules=[Raiser("pre_epoch", StopTraining)])
    history = trainer.fit()
    assert trainer.state.epoch == 0 and history == {}
    assert same(before, params_of(model))


class Poison(MainLoopModule):
    name = "poison"

    def post_forward(self, state):
        if state.phase == "train" and state.epoch == 2 and state.batch_index == 3:
            state.loss = state.loss * float("nan")


def test_nan_loss_raises_naming_epoch_and_batch(model, loaders):
    with pytest.raises(TrainingError, match=r"epoch 2, batch 3.*nan_policy='skip'"):
        Loop(model, loaders, epochs=3, device="cpu", modules=[Poison()]).fit()


def test_nan_loss_skipped_when_asked(model, loaders):
    trainer = Loop(model, loaders, epochs=3, device="cpu", modules=[Poison()], nan_policy="skip")
    history = trainer.fit()
    assert trainer.state.nonfinite_batches == 1 and trainer.state.skipped_batches == 1
    assert all(math.isfinite(value) for value in history["train.loss"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "options, match",
    [
        ({"optimizer": "adamm"}, r"unknown optimizer 'adamm'; Did you mean 'adam'\? known: adagrad, adam, adamax, adamw"),
        ({"loss": "crossentropy"}, r"unknown loss 'crossentropy'; Did you mean 'cross_entropy'\? known: .*cross_entropy"),
        ({"modules": {"early_stop": {}}}, r"unknown main-loop module 'early_stop'; Did you mean 'early_stopping'\? known: .*early_stopping"),
        ({"nan_policy": "ignore"}, r"nan_policy must be one of"),
        ({"amp": "fp8"}, r"amp must be one of"),
        ({"accumulation_steps": 0}, r"accumulation_steps must be"),
        ({"modules": {"early_stopping": {"patience": 0}}}, r"patience must be an integer >= 1"),
    ],
)
def test_bad_names_and_options_are_reported(model, loaders, options, match):
    with pytest.raises(ConfigError, match=match):
        Loop(model, loaders, epochs=1, device="cpu", **options).fit()


def test_dotted_paths_resolve_and_bad_paths_are_reported(model, loaders):
    trainer = Loop(model, loaders, epochs=1, device="cpu", optimizer="torch.optim.SGD",
                   loss="torch.nn.functional.cross_entropy", loss_options={"label_smoothing": 0.1},
                   optimizer_options={"momentum": 0.9})
    trainer.fit()
    assert isinstance(trainer.state.optimizer, torch.optim.SGD)
    assert trainer.state.optimizer.param_groups[0]["momentum"] == 0.9
    with pytest.raises(FunctionResolutionError, match="no attribute 'Nope'"):
        Loop(model, loaders, epochs=1, device="cpu", optimizer="torch.optim.Nope").fit()


def test_bad_batches_and_missing_train_loader(model):
    loader = DataLoader(TensorDataset(torch.randn(4, 8)), batch_size=2)
    with pytest.raises(DataError, match=r"\(inputs, targets\)"):
        Loop(model, {"train": loader}, epochs=1, device="cpu").fit()
    with pytest.raises(TrainingError, match="needs a 'train' loader"):
        Loop(model, {"test": loader}, epochs=1, device="cpu")


class TaskModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(8, 2), "b": torch.nn.Linear(8, 3)})
        self.keys = []

    def forward(self, x, data_key=None):
        self.keys.append(data_key)
        return self.heads[data_key](x)


def test_dict_of_loaders_is_interleaved_by_data_key(make_loaders):
    a = make_loaders(n=48, batch_size=16)  # 3 batches
    b = make_loaders(n=16, batch_size=16, seed=4)  # 1 batch
    b["train"].dataset.tensors = (b["train"].dataset.tensors[0], b["train"].dataset.tensors[1] + 1)
    loaders = {split: {"a": a[split], "b": b[split]} for split in ("train", "validation")}
    model = TaskModel()
    trainer = Loop(model, loaders, epochs=1, device="cpu")
    history = trainer.fit()
    assert model.keys[:4] == ["a", "b", "a", "a"]
    assert trainer.state.optimizer_steps == 4
    assert {"validation.a.loss", "validation.b.loss", "validation.loss"} <= set(history)


def test_model_returning_extras_and_output(loaders):
    class WithExtras(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = torch.nn.Linear(8, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            hidden = self.body(x)
            return {"hidden": hidden}, self.head(hidden)

    class SeeExtras(MainLoopModule):
        name = "see_extras"
        shapes = []

        def post_forward(self, state):
            self.shapes.append(tuple(state.model_extras["hidden"].shape))

    seer = SeeExtras()
    history = Loop(WithExtras(), loaders, epochs=1, device="cpu", modules=[seer]).fit()
    assert seer.shapes[0] == (16, 4)
    assert history["train.accuracy"][0] is not None


def test_gradient_accumulation_steps(model, loaders):
    trainer = Loop(model, loaders, epochs=1, device="cpu", accumulation_steps=4)
    trainer.fit()
    assert trainer.state.optimizer_steps == 2  # 6 batches: a step after 4 and after the last 2


def test_callback_with_and_without_arguments(model, loaders):
    plain, seen = [], []
    Loop(model, loaders, epochs=2, device="cpu", cb=lambda: plain.append(1)).fit()
    Loop(model, loaders, epochs=2, device="cpu",
         cb=lambda epoch, **rest: seen.append((epoch, "validation.loss" in rest["metrics"]))).fit()
    assert plain == [1, 1]
    assert seen == [(1, True), (2, True)]


def test_log_and_accumulate_reach_history(model, loaders):
    class Logger(MainLoopModule):
        name = "logger"

        def post_forward(self, state):
            state.accumulate("double_loss", state.loss * 2, state.targets.shape[0])

        def post_epoch(self, state):
            state.log("custom", state.epoch * 10)

    history = Loop(model, loaders, epochs=2, device="cpu", modules=[Logger()]).fit()
    assert history["custom"] == [10, 20]
    assert history["train.double_loss"][0] == pytest.approx(2 * history["train.loss"][0], rel=1e-5)
    assert history["validation.double_loss"][1] == pytest.approx(2 * history["validation.loss"][1], rel=1e-5)


def test_bfloat16_autocast_on_cpu(model, loaders):
    history = Loop(model, loaders, epochs=1, device="cpu", amp="bf16").fit()
    assert math.isfinite(history["train.loss"][0])
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Loop(model, loaders, epochs=1, device="cpu", amp="fp16")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_amp_with_grad_clip(model, loaders):
    trainer = Loop(model, loaders, epochs=2, device="auto", amp=True,
                   modules={"grad_clip": {"max_norm": 1.0}})
    history = trainer.fit()
    assert trainer.state.device.type == "cuda" and trainer.state.scaler is not None
    assert all(math.isfinite(value) for value in history["train.loss"])
    assert next(model.parameters()).is_cuda


def test_repeated_fit_is_refused(model, loaders, caplog):
    trainer = Loop(model, loaders, epochs=1, device="cpu")
    trainer.fit()
    with pytest.raises(TrainingError, match="already run"):
        trainer.fit()
