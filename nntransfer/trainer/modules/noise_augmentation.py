"""Additive Gaussian noise on the inputs, at fixed levels or a mixture of levels.

Levels are given either as standard deviations (``std``) or as signal-to-noise
ratios (``snr``, a power ratio: a sample ``x`` gets noise of standard deviation
``sqrt(mean(x**2) / snr)``).  With several levels, each batch (``per="batch"``)
or each sample (``per="sample"``) draws one, uniformly or with the given
``probabilities``; a level of ``None`` means "no noise".

Training noise comes from the module's own generator, seeded from the run's
seed and saved in checkpoints, so a resumed run draws the same noise.  In
evaluation phases every batch is noised from a generator seeded by
``(eval_seed, phase, data key, batch index)``: the validation set sees the
same noise in every epoch, so validation scores are comparable across epochs
and runs.

Per batch the module leaves in ``state.extras``: ``"clean_inputs"`` (the
inputs before noise, for representation matching), ``"noise_std"`` (the
standard deviation used for each sample) and ``"noise_level"`` (each sample's
level as configured; for ``snr``, ``inf`` marks a clean sample).
"""

import math
import zlib
from typing import Optional, Sequence, Union

import torch

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer.module import MainLoopModule

PHASES = ("train", "validation", "test")
Levels = Union[None, float, Sequence[Optional[float]]]


def _as_levels(levels, kind: str) -> list:
    levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
    if not levels:
        raise ConfigError(f"noise_augmentation: {kind} needs at least one level")
    for level in levels:
        if level is None:
            continue
        if not isinstance(level, (int, float)) or math.isnan(level):
            raise ConfigError(f"noise_augmentation: {kind} levels must be numbers or None, got {level!r}")
        if (kind == "std" and level < 0) or (kind == "snr" and level <= 0):
            raise ConfigError(
                f"noise_augmentation: {kind} levels must be {'>= 0' if kind == 'std' else '> 0'}, got {level}"
            )
    return levels


def _eval_seed(base: int, phase: str, data_key, batch_index: int) -> int:
    """A seed that depends only on where the batch is, never on the epoch."""
    text = f"{base}|{phase}|{data_key}|{batch_index}".encode()
    return zlib.crc32(text)


class NoiseAugmentation(MainLoopModule):
    """Add Gaussian noise to ``state.inputs`` (see module doc).

    ``std`` or ``snr`` (exactly one): a level or a list of levels.
    ``probabilities``: one per level (default uniform).  ``per``: ``"sample"``
    or ``"batch"``.  ``phases``: where noise is added; add ``"validation"`` and
    ``"test"`` to measure robustness with reproducible noise.  ``seed`` and
    ``eval_seed`` default to the run's seed (0 without one).
    """

    name = "noise_augmentation"
    order = 100
    added_metrics = ("noise_std",)

    def __init__(
        self,
        std: Levels = None,
        snr: Levels = None,
        probabilities: Optional[Sequence[float]] = None,
        per: str = "sample",
        phases=("train",),
        seed: Optional[int] = None,
        eval_seed: Optional[int] = None,
    ):
        if (std is None) == (snr is None):
            raise ConfigError("noise_augmentation: give either std=<levels> or snr=<levels>, exactly one")
        self.kind = "std" if std is not None else "snr"
        self.levels = _as_levels(std if std is not None else snr, self.kind)
        if probabilities is None:
            probabilities = [1.0] * len(self.levels)
        probabilities = list(probabilities)
        if len(probabilities) != len(self.levels) or any(
            not isinstance(p, (int, float)) or p < 0 for p in probabilities
        ) or sum(probabilities) <= 0:
            raise ConfigError(
                f"noise_augmentation: probabilities must be {len(self.levels)} numbers >= 0 with a "
                f"positive sum (one per level), got {probabilities!r}"
            )
        if per not in ("sample", "batch"):
            raise ConfigError(f"noise_augmentation: per must be 'sample' or 'batch', got {per!r}")
        phases = (phases,) if isinstance(phases, str) else tuple(phases)
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ConfigError(f"noise_augmentation: unknown phases {unknown}; choose from {list(PHASES)}")
        total = float(sum(probabilities))
        self.probabilities = [p / total for p in probabilities]
        self.per = per
        self.phases = phases
        self.seed = seed
        self.eval_seed = eval_seed
        self._generator = None
        self._pending_generator_state = None

    def setup(self, state):
        run_seed = state.seed if state.seed is not None else 0
        self._eval_seed_value = run_seed if self.eval_seed is None else self.eval_seed
        self._device = torch.device(state.device)
        self._generator = torch.Generator(device=self._device)
        self._generator.manual_seed(run_seed if self.seed is None else self.seed)
        if self._pending_generator_state is not None:
            self._generator.set_state(self._pending_generator_state.cpu())
            self._pending_generator_state = None
        clean = [0.0 if self.kind == "std" else math.inf]
        self._level_values = torch.tensor(
            [clean[0] if level is None else float(level) for level in self.levels], device=self._device
        )
        self._probabilities = torch.tensor(self.probabilities, device=self._device)

    def _draw_levels(self, n: int, generator) -> torch.Tensor:
        count = n if self.per == "sample" else 1
        index = torch.multinomial(self._probabilities, count, replacement=True, generator=generator)
        values = self._level_values[index]
        return values.expand(n) if self.per == "batch" else values

    def pre_forward(self, state):
        if state.phase not in self.phases:
            return
        x = state.inputs
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TrainingError(
                "noise_augmentation needs floating-point tensor inputs, got "
                + (f"a tensor of {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__)
            )
        if state.phase == "train":
            generator = self._generator
        else:
            generator = torch.Generator(device=self._device)
            generator.manual_seed(_eval_seed(self._eval_seed_value, state.phase, state.data_key, state.batch_index))
        n = x.shape[0]
        levels = self._draw_levels(n, generator)
        if self.kind == "std":
            std = levels
        else:
            power = x.detach().float().pow(2).reshape(n, -1).mean(1)
            std = torch.sqrt(power / levels)  # level inf (clean) gives 0
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        state.extras["clean_inputs"] = x
        state.inputs = x + noise * std.to(x.dtype).view(n, *([1] * (x.dim() - 1)))
        state.extras["noise_std"] = std
        state.extras["noise_level"] = levels
        state.accumulate("noise_std", std.mean(), n)

    def state_dict(self) -> dict:
        if self._generator is None:
            return {}
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "generator" not in state_dict:
            return
        if self._generator is None:
            self._pending_generator_state = state_dict["generator"]
        else:
            self._generator.set_state(state_dict["generator"].cpu())
