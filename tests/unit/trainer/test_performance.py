"""The performance module (channels_last, compile, cudnn_benchmark), and the GPU paths that need a CUDA device."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.configs import TrainerConfig
from nntransfer.errors import ConfigError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.standard import standard_trainer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def image_loaders(n=64, batch_size=16, pin_memory=False):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 8, 8, generator=generator)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long()
    data = TensorDataset(images, labels)
    shuffled = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(1),
                          pin_memory=pin_memory)
    return {"train": shuffled, "validation": DataLoader(data, batch_size=batch_size, pin_memory=pin_memory),
            "test": DataLoader(data, batch_size=batch_size, pin_memory=pin_memory)}


def conv_model(batch_norm=True):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8) if batch_norm else torch.nn.Identity(),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2),
    )


def fit(modules=None, device="cpu", watch=True, **options):
    model = conv_model()
    seen = []
    if watch:  # a Python hook would make torch.compile trace again for every call
        model[0].register_forward_pre_hook(
            lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
        )
    loop = Loop(model, image_loaders(), epochs=2, device=device, seed=0, modules=modules, **options)
    history = loop.fit()
    return loop, history, seen


def test_channels_last_converts_weights_and_batches_and_trains_the_same():
    plain, plain_history, plain_seen = fit()
    fast, fast_history, fast_seen = fit({"performance": {"channels_last": True}})
    assert fast.state.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(fast_seen) and not any(plain_seen)
    assert fast_history["train.loss"] == pytest.approx(plain_history["train.loss"], rel=1e-5)
    assert fast.state.model.state_dict().keys() == plain.state.model.state_dict().keys()


def test_compile_keeps_state_dict_names_and_the_result():
    plain, plain_history, _ = fit(watch=False)
    compiled, compiled_history, _ = fit({"performance": {"compile": {"backend": "eager"}}}, watch=False)
    assert compiled.state.model._compiled_call_impl is not None
    assert compiled.state.model.state_dict().keys() == plain.state.model.state_dict().keys()
    assert compiled_history["train.loss"] == pytest.approx(plain_history["train.loss"], rel=1e-5)


def test_cudnn_benchmark_is_restored_also_when_the_run_fails():
    before = torch.backends.cudnn.benchmark
    model = conv_model()
    model.register_forward_hook(lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    loop = Loop(model, image_loaders(), epochs=1, device="cpu", modules={"performance": {"cudnn_benchmark": True}})
    with pytest.raises(RuntimeError, match="boom"):
        loop.fit()
    assert torch.backends.cudnn.benchmark == before


def test_a_bad_compile_option_fails_when_the_config_is_made():
    with pytest.raises(ConfigError, match="compile must be true, false or torch.compile's keywords"):
        TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer",
                             modules={"performance": {"compile": "yes"}})


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_gpu_options_together_on_cuda(amp):
    loop, history, seen = fit({"performance": {"channels_last": True, "cudnn_benchmark": True}}, device="cuda", amp=amp)
    assert all(seen) and loop.state.model[0].weight.is_cuda
    assert all(torch.isfinite(torch.tensor(history["train.loss"])))
    assert (loop.state.scaler is not None) == (amp == "fp16")


@pytest.mark.cuda
@needs_cuda
def test_compiled_model_trains_on_cuda():
    loop, history, _ = fit({"performance": {"compile": True}}, device="cuda", amp="bf16", watch=False)
    assert all(torch.isfinite(torch.tensor(history["train.loss"])))


@pytest.mark.cuda
@needs_cuda
def test_pinned_batches_reach_the_gpu_without_a_sync_per_batch():
    """The loop copies batches with non_blocking=True; a blocking copy would synchronise twice per batch."""
    pinned = image_loaders(batch_size=4, pin_memory=True)
    assert next(iter(pinned["train"]))[0].is_pinned()
    loop = Loop(conv_model(), {"train": pinned["train"]}, epochs=2, device="cuda", seed=0, nan_policy="off")
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = loop.fit()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchronizing CUDA operation" in str(w.message)]
    batches = 2 * len(pinned["train"])
    assert len(syncs) < batches, [str(w.message) for w in syncs[:5]]
    pageable = Loop(conv_model(), {"train": image_loaders(batch_size=4)["train"]}, epochs=2, device="cuda", seed=0,
                    nan_policy="off").fit()
    assert history["train.loss"] == pytest.approx(pageable["train.loss"], rel=1e-4)


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ddp_on_two_gpus_trains_what_one_gpu_trains():
    """NCCL; a model without BatchNorm, which normalises with each rank's part of the batch."""
    def run(**options):
        model = conv_model(batch_norm=False)
        return standard_trainer(model, image_loaders(), 0, epochs=2, optimizer="sgd", lr=0.1, device="cuda", **options)

    (score1, output1, state1), (score2, output2, state2) = run(), run(strategy="ddp", devices=2)
    assert output1["history"]["train.loss"] == pytest.approx(output2["history"]["train.loss"], rel=1e-4)
    assert output1["final"] == pytest.approx(output2["final"], rel=1e-4)
    for name, value in state1.items():
        assert torch.allclose(value, state2[name], atol=1e-4), name
