"""The tensorboard module writes every epoch's metrics as TensorBoard scalars, read back with TensorBoard's own reader."""

import pytest

from nntransfer.errors import ConfigError
from nntransfer.trainer.standard import standard_trainer

pytest.importorskip("tensorboard")


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_every_epoch_metric_becomes_a_scalar_per_epoch(model, loaders, tmp_path):
    modules = {"tensorboard": {"log_dir": str(tmp_path), "run_name": "run"}}
    _, output, _ = standard_trainer(model, loaders, seed=1, epochs=3, device="cpu", modules=modules)
    written = scalars(tmp_path / "run")
    history = output["history"]
    assert {"train/loss", "validation/accuracy", "validation/loss", "lr"} <= set(written)
    assert [step for step, _ in written["validation/accuracy"]] == [1, 2, 3]
    assert [value for _, value in written["validation/accuracy"]] == pytest.approx(history["validation.accuracy"])


def test_runs_get_their_own_folders_and_bad_options_are_refused_when_the_config_is_made(make_model, loaders, tmp_path):
    from nntransfer.configs import TrainerConfig

    for seed in (1, 2):
        standard_trainer(make_model(seed), loaders, seed=seed, epochs=1, device="cpu",
                         modules={"tensorboard": {"log_dir": str(tmp_path)}})
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and folders[0].split("-seed")[1].startswith("1")
    with pytest.raises(ConfigError, match="log_dir must be a folder name"):
        TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", modules={"tensorboard": {"log_dir": ""}})
