import logging

import pytest
import torch

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.modules import REGISTRY, build_modules, resolve_module
from nntransfer.trainer.modules.early_stopping import EarlyStopping


class ScriptedObjective(MainLoopModule):
    """Overwrites validation.loss with scripted values, so stopping decisions are exact."""

    name = "scripted"
    order = 350

    def __init__(self, values):
        self.values = values

    def post_epoch(self, state):
        state.metrics["validation.loss"] = self.values[state.epoch - 1]


def test_early_stopping_stops_after_patience_and_restores_best(model, loaders):
    weights = []

    class Snapshot(MainLoopModule):
        name = "snapshot"
        order = 560

        def post_epoch(self, state):
            weights.append({k: v.clone() for k, v in state.model.state_dict().items()})

    values = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]
    trainer = Loop(model, loaders, epochs=6, device="cpu",
                   modules=[ScriptedObjective(values), Snapshot(), EarlyStopping(patience=2)])
    trainer.fit()
    assert trainer.state.epoch == 4
    stopper = trainer.module("early_stopping")
    assert stopper.best == 0.5 and stopper.best_epoch == 2
    assert all(torch.equal(v, weights[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, weights[3][k]) for k, v in model.state_dict().items())


def test_early_stopping_default_patience_and_tolerance(model, loaders):
    values = [1.0] + [0.99] * 8
    trainer = Loop(model, loaders, epochs=9, device="cpu",
                   modules=[ScriptedObjective(values), EarlyStopping(tolerance=0.05)])
    trainer.fit()
    assert trainer.state.epoch == 6  # default patience 5: epochs 2..6 do not improve by > 0.05


def test_early_stopping_lr_decay_rounds_really_lower_the_rate(model, loaders):
    values = [1.0] + [2.0] * 9
    trainer = Loop(model, loaders, epochs=10, lr=0.01, device="cpu",
                   modules=[ScriptedObjective(values),
                            EarlyStopping(patience=2, lr_decay_steps=2, lr_decay_factor=0.5)])
    history = trainer.fit()
    assert history["lr"] == [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    assert trainer.state.optimizer.param_groups[0]["lr"] == pytest.approx(0.0025)
    assert trainer.state.epoch == 7


def test_early_stopping_maximize_and_max_epochs(model, loaders):
    trainer = Loop(model, loaders, epochs=10, device="cpu",
                   modules={"early_stopping": {"objective": "validation.accuracy", "maximize": True,
                                               "patience": 100, "max_epochs": 3}})
    trainer.fit()
    assert trainer.state.epoch == 3
    assert trainer.module("early_stopping").best == max(trainer.state.history["validation.accuracy"])


def test_early_stopping_reports_a_missing_objective(model, loaders):
    with pytest.raises(ModuleRequirementError, match="'validation.acc' is not among"):
        Loop(model, loaders, epochs=2, device="cpu",
             modules={"early_stopping": {"objective": "validation.acc"}}).fit()
    no_validation = {"train": loaders["train"]}
    with pytest.raises(ModuleRequirementError, match="needs a 'validation' loader"):
        Loop(model, no_validation, epochs=2, device="cpu", modules={"early_stopping": {}}).fit()


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"kind": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
        ({"kind": "multistep", "milestones": [1, 4], "gamma": 0.1}, [0.1, 0.01, 0.01, 0.01, 0.001]),
        ({"kind": "cosine"}, [0.1, 0.0904508, 0.0654508, 0.0345492, 0.0095492]),
    ],
)
def test_lr_schedules(model, loaders, options, expected):
    history = Loop(model, loaders, epochs=5, lr=0.1, optimizer="sgd", device="cpu",
                   modules={"lr_schedule": options}).fit()
    assert history["lr"] == pytest.approx(expected, rel=1e-5)


def test_plateau_schedule_steps_on_the_monitored_metric(model, loaders):
    values = [1.0, 1.0, 1.0, 1.0, 1.0]
    trainer = Loop(model, loaders, epochs=5, lr=0.1, device="cpu",
                   modules=[ScriptedObjective(values)]
                   + build_modules({"lr_schedule": {"kind": "plateau", "patience": 1, "factor": 0.5}}))
    history = trainer.fit()
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])


def test_lr_schedule_options_are_checked():
    with pytest.raises(ConfigError, match="unknown kind 'linear'"):
        build_modules({"lr_schedule": {"kind": "linear"}})
    with pytest.raises(ConfigError, match="needs step_size"):
        build_modules({"lr_schedule": {"kind": "step"}})


def test_warmup_ramps_the_rate_linearly(model, loaders):
    rates = []

    class Rates(MainLoopModule):
        name = "rates"

        def pre_forward(self, state):
            if state.phase == "train":
                rates.append(state.optimizer.param_groups[0]["lr"])

    Loop(model, loaders, epochs=2, lr=0.1, device="cpu",
         modules=[Rates()] + build_modules({"warmup": {"steps": 4}})).fit()
    assert rates[:6] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    assert rates[-1] == pytest.approx(0.1)


def test_warmup_by_epochs_counts_steps_per_epoch(model, loaders):
    warmup = build_modules({"warmup": {"epochs": 1, "start_factor": 0.5}})[0]
    Loop(model, loaders, epochs=1, device="cpu", modules=[warmup]).fit()
    assert warmup.total == 6


class GradNorms(MainLoopModule):
    name = "grad_norms"
    order = 310

    def __init__(self):
        self.norms, self.maxima = [], []

    def post_backward(self, state):
        grads = [p.grad for p in state.model.parameters()]
        self.norms.append(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item())
        self.maxima.append(max(g.abs().max().item() for g in grads))


def test_grad_clip_by_norm_and_by_value(model, make_model, loaders):
    norms = GradNorms()
    history = Loop(model, loaders, epochs=1, lr=1.0, device="cpu",
                   modules=[norms, *build_modules({"grad_clip": {"max_norm": 0.01}})]).fit()
    assert max(norms.norms) <= 0.01 + 1e-6
    assert history["train.grad_norm"][0] > 0.01
    values = GradNorms()
    Loop(make_model(), loaders, epochs=1, device="cpu",
         modules=[values, *build_modules({"grad_clip": {"max_value": 0.001}})]).fit()
    assert max(values.maxima) <= 0.001 + 1e-9
    with pytest.raises(ConfigError, match="exactly one"):
        build_modules({"grad_clip": {}})


def test_progress_logs_one_line_per_epoch_and_no_bar_off_a_terminal(model, loaders, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="nntransfer.trainer"):
        Loop(model, loaders, epochs=2, device="cpu", modules={"progress": {}}).fit()
    lines = [r.getMessage() for r in caplog.records if r.name == "nntransfer.trainer"]
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2") and "validation.accuracy" in lines[1] and "lr 0.001" in lines[1]
    assert "epoch 1/2" not in capsys.readouterr().out


def test_registry_names_and_dotted_paths():
    assert resolve_module("early_stopping") is EarlyStopping
    assert resolve_module("nntransfer.trainer.modules.early_stopping.EarlyStopping") is EarlyStopping
    for name in ("distillation", "finetuning", "noise_augmentation",
                 "representation_matching", "representation_monitor"):
        assert REGISTRY[name].startswith(f"nntransfer.trainer.modules.{name}.")
    with pytest.raises(ConfigError, match="not a MainLoopModule"):
        resolve_module("torch.nn.Linear")
    with pytest.raises(ConfigError, match="has no option 'patients'. Did you mean 'patience'"):
        build_modules({"early_stopping": {"patients": 3}})


def test_duplicate_module_names_are_refused(model, loaders):
    with pytest.raises(ConfigError, match="distinct names"):
        Loop(model, loaders, epochs=1, device="cpu", modules=[EarlyStopping(), EarlyStopping()])


def test_early_stopping_does_not_keep_a_nan_first_objective_as_best(model, loaders):
    values = [float("nan"), 1.0, 0.5, 0.4]
    trainer = Loop(model, loaders, epochs=4, device="cpu",
                   modules=[ScriptedObjective(values), EarlyStopping(patience=2)])
    trainer.fit()
    stopper = trainer.module("early_stopping")
    assert trainer.state.epoch == 4
    assert (stopper.best, stopper.best_epoch) == (0.4, 4)


def test_rate_modules_accept_an_evaluation_only_run(model, loaders):
    trainer = Loop(model, loaders, epochs=0, device="cpu",
                   modules={"lr_schedule": {"kind": "step", "step_size": 1}, "warmup": {"steps": 3}})
    assert trainer.fit() == {}
    assert trainer.state.scheduler is None
    assert set(trainer.evaluate("validation")) == {"validation.loss", "validation.accuracy"}
