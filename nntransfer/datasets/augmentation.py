"""Small random image perturbations for training splits: shifts, rotations, noise.

The perturbations are drawn from a ``torch.Generator`` owned by the dataset, so a
run with the same seed sees the same augmented images.  Shift and rotation are
one affine warp (integer shifts are exact with bilinear sampling); noise is added
to the [0, 1]-scaled image before normalisation, so its size does not depend on
the dataset's statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nntransfer.errors import ConfigError

_KNOWN_KEYS = ("shift", "rotation", "noise")


@dataclass(frozen=True)
class Augmentation:
    """Random shift of up to ``shift`` pixels per axis, rotation of up to
    ``rotation`` degrees either way, and Gaussian noise of std ``noise``."""

    shift: int = 0
    rotation: float = 0.0
    noise: float = 0.0

    @classmethod
    def from_config(cls, config: dict | None) -> "Augmentation | None":
        """Build from the ``augmentation`` option; ``None`` or ``{}`` means off."""
        if not config:
            return None
        if not isinstance(config, dict):
            raise ConfigError(
                f"`augmentation` must be a dict with keys {list(_KNOWN_KEYS)} or None; got {config!r}."
            )
        unknown = sorted(set(config) - set(_KNOWN_KEYS))
        if unknown:
            raise ConfigError(
                f"`augmentation` has unknown keys {unknown}; known keys are {list(_KNOWN_KEYS)}."
            )
        augmentation = cls(
            shift=int(config.get("shift", 0)),
            rotation=float(config.get("rotation", 0.0)),
            noise=float(config.get("noise", 0.0)),
        )
        if augmentation.shift < 0 or augmentation.rotation < 0 or augmentation.noise < 0:
            raise ConfigError(f"`augmentation` values must not be negative; got {config!r}.")
        return augmentation

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Perturb one ``(C, H, W)`` float image."""
        if self.shift or self.rotation:
            image = self._warp(image, generator)
        if self.noise:
            image = image + self.noise * torch.randn(
                image.shape, generator=generator, dtype=image.dtype
            )
        return image

    def _warp(self, image, generator):
        _, height, width = image.shape
        dx, dy = (
            torch.randint(-self.shift, self.shift + 1, (2,), generator=generator).tolist()
            if self.shift
            else (0, 0)
        )
        angle = 0.0
        if self.rotation:
            angle = math.radians(
                (2.0 * torch.rand((), generator=generator).item() - 1.0) * self.rotation
            )
        cos, sin = math.cos(angle), math.sin(angle)
        # affine_grid maps output to input coordinates in [-1, 1]; a shift of one
        # pixel is 2 / size in those units, and the sign moves content by +dx.
        theta = torch.tensor(
            [[cos, -sin, -2.0 * dx / width], [sin, cos, -2.0 * dy / height]],
            dtype=image.dtype,
        ).unsqueeze(0)
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        warped = F.grid_sample(
            image.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return warped.squeeze(0)
