import pytest
import torch

from nntransfer.errors import ModuleRequirementError, TrainingError
from nntransfer.trainer.checkpoints import LocalCheckpointStore, MemoryCheckpointStore
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.modules.checkpointing import Checkpointing


@pytest.fixture(params=["memory", "local"])
def store(request, tmp_path):
    return MemoryCheckpointStore() if request.param == "memory" else LocalCheckpointStore(tmp_path / "ckpt")


def test_store_keeps_one_checkpoint_per_tag(store):
    assert store.load("last") is None
    store.save(1, {"w": torch.ones(2), "n": 1}, tags=["last", "best"])
    store.save(2, {"w": torch.zeros(2), "n": 2}, tags=["last"])
    assert store.list() == [{"tag": "best", "epoch": 1}, {"tag": "last", "epoch": 2}]
    assert store.load("last")["n"] == 2 and torch.equal(store.load("best")["w"], torch.ones(2))
    assert store.load(1)["n"] == 1 and store.load(7) is None
    store.clear()
    assert store.list() == [] and store.load("best") is None
    with pytest.raises(TrainingError, match="tag 'Best!'"):
        store.save(3, {}, tags=["Best!"])


class Arbitrary:
    """A class a checkpoint must not be able to smuggle in (weights_only loading)."""


def test_local_store_refuses_pickled_objects_on_load(tmp_path, caplog):
    store = LocalCheckpointStore(tmp_path)
    store.save(1, {"ok": torch.ones(1)})
    torch.save({"bad": Arbitrary()}, tmp_path / "last-000002.pt")
    # never unpickled: the entry counts as missing and the older readable one is used
    assert torch.equal(store.load("last")["ok"], torch.ones(1))
    assert "'last-000002' cannot be read" in caplog.text
    (tmp_path / "last-000001.pt").write_bytes(b"truncated")
    assert store.load("last") is None


MODULES = {
    "lr_schedule": {"kind": "step", "step_size": 2, "gamma": 0.5},
    "warmup": {"steps": 3},
    "early_stopping": {"patience": 10, "lr_decay_steps": 1},
    "grad_clip": {"max_norm": 5.0},
}


class Callback:
    def __init__(self, store):
        self.checkpoint_store = store
        self.epochs = []

    def __call__(self, epoch):
        self.epochs.append(epoch)


def run(make_model, make_loaders, epochs, cb=None, modules=None):
    trainer = Loop(make_model(seed=1, dropout=0.3), make_loaders(), epochs=epochs, seed=7, lr=0.01,
                   device="cpu", modules=dict(modules or MODULES), cb=cb)
    trainer.fit()
    return trainer


def tensors(trainer):
    state = trainer.state
    found = dict(state.model.state_dict())
    for index, value in state.optimizer.state_dict()["state"].items():
        for key, tensor in value.items():
            found[f"opt.{index}.{key}"] = tensor
    found["rng"] = torch.get_rng_state()
    for name, tensor in (trainer.module("early_stopping").best_weights or {}).items():
        found[f"best.{name}"] = tensor
    return found


def test_resumed_run_is_bit_identical(make_model, make_loaders):
    straight = run(make_model, make_loaders, 6)
    straight_tensors = tensors(straight)

    cb = Callback(MemoryCheckpointStore())
    first = run(make_model, make_loaders, 3, cb=cb)
    assert first.state.epoch == 3 and cb.checkpoint_store.load("last")["epoch"] == 3
    resumed = run(make_model, make_loaders, 6, cb=cb)
    assert resumed.module("checkpointing").resumed_from == 3
    assert cb.epochs == [1, 2, 3, 4, 5, 6]

    resumed_tensors = tensors(resumed)
    assert resumed_tensors.keys() == straight_tensors.keys()
    for name, tensor in straight_tensors.items():
        assert torch.equal(tensor, resumed_tensors[name]), name
    assert resumed.state.history == straight.state.history
    assert resumed.state.optimizer_steps == straight.state.optimizer_steps
    assert resumed.state.scheduler.state_dict() == straight.state.scheduler.state_dict()


def test_resume_without_the_rng_state_would_differ(make_model, make_loaders):
    """The bit-identity test above can fail: dropping the RNG restore changes the run."""
    straight = run(make_model, make_loaders, 4)
    cb = Callback(MemoryCheckpointStore())
    run(make_model, make_loaders, 2, cb=cb)
    payload = cb.checkpoint_store.load("last")
    payload["rng"]["torch"] = torch.manual_seed(123).get_state()
    cb.checkpoint_store.save(2, payload, tags=["last"])
    resumed = run(make_model, make_loaders, 4, cb=cb)
    assert resumed.state.history["train.loss"][2] != straight.state.history["train.loss"][2]


def test_checkpoint_every_n_epochs_in_a_folder(make_model, make_loaders, tmp_path):
    trainer = run(make_model, make_loaders, 5,
                  modules={"checkpointing": {"every": 2, "folder": str(tmp_path), "objective": "validation.accuracy",
                                             "maximize": True}})
    store = trainer.module("checkpointing").store
    tags = {entry["tag"]: entry["epoch"] for entry in store.list()}
    assert tags["last"] == 5
    accuracies = trainer.state.history["validation.accuracy"]
    assert tags["best"] == 1 + accuracies.index(max(accuracies))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}-{e:06d}.pt" for t, e in tags.items())


def test_checkpointing_needs_a_store(make_model, make_loaders):
    with pytest.raises(ModuleRequirementError, match="no place for checkpoints"):
        run(make_model, make_loaders, 1, modules={"checkpointing": {}})


def test_finished_run_resumes_to_nothing(make_model, make_loaders):
    cb = Callback(MemoryCheckpointStore())
    first = run(make_model, make_loaders, 2, cb=cb)
    again = run(make_model, make_loaders, 2, cb=cb)
    assert again.state.epoch == 2 and cb.epochs == [1, 2]
    for name, tensor in first.state.model.state_dict().items():
        assert torch.equal(tensor, again.state.model.state_dict()[name])


def test_resume_restores_the_data_pipelines_own_generators():
    """nntransfer's datasets shuffle and augment with their own generators, not the global RNG."""
    from nntransfer.datasets.digits import digits_dataset_fn
    from nntransfer.models.mlp import mlp_model_fn

    def loaders():
        return digits_dataset_fn(0, batch_size=64, train_subset=0.3, augmentation={"shift": 1, "noise": 0.1})

    def train(epochs, cb=None):
        data = loaders()
        trainer = Loop(mlp_model_fn(data, 0, hidden_sizes=[16]), data, epochs=epochs, lr=1e-2, seed=0, cb=cb,
                       modules={"checkpointing": {}} if cb else None)
        trainer.fit()
        return trainer

    straight = train(4)
    cb = Callback(MemoryCheckpointStore())
    train(2, cb=cb)
    assert set(cb.checkpoint_store.load("last")["data_rng"]) >= {"train/loader", "train/dataset"}
    resumed = train(4, cb=cb)
    for name, tensor in straight.state.model.state_dict().items():
        assert torch.equal(tensor, resumed.state.model.state_dict()[name]), name


def test_min_interval_spaces_out_last_checkpoints_and_save_best_can_be_off(make_model, make_loaders):
    class CountingStore(MemoryCheckpointStore):
        def __init__(self):
            super().__init__()
            self.saved = []

        def save(self, epoch, payload, tags):
            self.saved.append((epoch, tuple(tags)))
            super().save(epoch, payload, tags)

    spaced = CountingStore()
    run(make_model, make_loaders, 4, modules={"checkpointing": {"store": spaced, "min_interval": 3600}})
    assert [epoch for epoch, tags in spaced.saved if "last" in tags] == [4]  # only the final one
    every = CountingStore()
    run(make_model, make_loaders, 4, modules={"checkpointing": {"store": every, "save_best": False}})
    assert every.saved == [(1, ("last",)), (2, ("last",)), (3, ("last",)), (4, ("last",))]


def test_a_store_brought_by_cb_is_written_for_resuming_only(make_model, make_loaders):
    from nntransfer.trainer.modules.checkpointing import AUTO_INTERVAL

    trainer = run(make_model, make_loaders, 2, cb=Callback(MemoryCheckpointStore()))
    module = trainer.module("checkpointing")
    assert (module.save_best, module.min_interval) == (False, AUTO_INTERVAL)
    assert [entry["tag"] for entry in module.store.list()] == ["last"]


def test_a_configured_checkpointing_without_a_store_writes_to_the_callbacks(make_model, make_loaders, tmp_path):
    cb = Callback(MemoryCheckpointStore())
    trainer = run(make_model, make_loaders, 2, cb=cb, modules={"checkpointing": {"folder": str(tmp_path / "unused")}})
    module = trainer.module("checkpointing")
    assert module.store is cb.checkpoint_store and module.save_best  # the config's options, the cb's store
    assert "best" in [entry["tag"] for entry in cb.checkpoint_store.list()]
    assert not (tmp_path / "unused").exists()


def test_a_store_of_its_own_wins_over_the_callbacks(make_model, make_loaders):
    own, cb = MemoryCheckpointStore(), Callback(MemoryCheckpointStore())
    trainer = Loop(make_model(), make_loaders(), epochs=1, device="cpu", cb=cb, modules=[Checkpointing(store=own)])
    trainer.fit()
    assert [module.name for module in trainer.modules] == ["checkpointing"]
    assert own.list() and not cb.checkpoint_store.list()


def test_no_checkpointing_joins_without_a_store(make_model, make_loaders):
    trainer = Loop(make_model(), make_loaders(), epochs=1, device="cpu", cb=lambda: None)
    assert trainer.state.checkpoint_store is None and trainer.modules == []


class AlwaysOn(MainLoopModule):
    name = "always_on"

    @classmethod
    def default_instance(cls, state):
        return cls()


def test_any_registered_module_may_offer_a_default_instance(make_model, make_loaders, monkeypatch):
    """The registry asks every registered class, not one module it knows by name."""
    from nntransfer.trainer.modules import REGISTRY

    monkeypatch.setitem(REGISTRY, "always_on", f"{__name__}.AlwaysOn")
    assert [m.name for m in Loop(make_model(), make_loaders(), epochs=1, device="cpu").modules] == ["always_on"]
    named = AlwaysOn()
    assert Loop(make_model(), make_loaders(), epochs=1, device="cpu", modules=[named]).modules == [named]


class NanFirstObjective(MainLoopModule):
    """validation.loss is NaN in epoch 1, then 1/epoch (improving)."""

    name = "nan_first"
    order = 500

    def post_epoch(self, state):
        state.metrics["validation.loss"] = float("nan") if state.epoch == 1 else 1.0 / state.epoch


def test_a_nan_first_objective_does_not_block_later_best_checkpoints(make_model, make_loaders):
    store = MemoryCheckpointStore()
    trainer = Loop(make_model(), make_loaders(), epochs=3, device="cpu",
                   modules=[NanFirstObjective(), Checkpointing(store=store)])
    trainer.fit()
    assert {entry["tag"]: entry["epoch"] for entry in store.list()}["best"] == 3
    assert trainer.module("checkpointing").best == pytest.approx(1 / 3)
