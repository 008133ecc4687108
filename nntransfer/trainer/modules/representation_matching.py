"""Representation matching: make a layer respond to noisy inputs as it does to clean ones.

Noise augmentation alone teaches the output to be robust; matching also asks an
intermediate representation to stay the same under noise, which transfers
robustness more reliably.  The module compares the named layer's output on the
noisy batch (the loop's own forward pass) with its output on the clean batch
(one extra forward pass) and adds ``weight * distance`` to the loss.

The clean inputs come from ``state.extras["clean_inputs"]``, which
:class:`~nntransfer.trainer.modules.noise_augmentation.NoiseAugmentation`
(order 100) leaves there, or which a dataset may provide itself.  By default
the clean representation is the target and gets no gradient
(``detach_clean=True``): pulling both sides towards each other can shrink the
representation instead of denoising it.  In training the extra pass runs in
train mode, so BatchNorm statistics also see the clean batch.
"""

import torch
import torch.nn.functional as F

from nntransfer.errors import ConfigError, ModuleRequirementError, TrainingError
from nntransfer.resolve import did_you_mean
from nntransfer.trainer.modules.layer_capture import LayerCaptureModule, check_phases
from nntransfer.trainer.signatures import accepts_data_key


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity of the flattened representations, batch mean."""
    return (1 - F.cosine_similarity(a.flatten(1).float(), b.flatten(1).float(), dim=1)).mean()


def mse_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(a.float(), b.float())


DISTANCES = {"cosine": cosine_distance, "mse": mse_distance}


class RepresentationMatching(LayerCaptureModule):
    """Add ``weight * distance(layer(noisy), layer(clean))`` to the loss.

    ``layer``: a name from ``model.named_modules()``.  ``distance``:
    ``"cosine"`` or ``"mse"``.  ``phases``: where the term is added (training
    by default).  ``clean_key``: where the clean inputs are in ``state.extras``.
    """

    name = "representation_matching"
    order = 210
    added_metrics = ("representation_matching_loss",)
    detach = False  # the noisy representation carries the gradient of the matching term

    @classmethod
    def check_options(cls, options):
        """``distance`` must name one of :data:`DISTANCES`."""
        distance = options["distance"]
        if distance not in DISTANCES:
            raise ConfigError(
                f"representation_matching: unknown distance {distance!r};{did_you_mean(distance, DISTANCES)} "
                f"choose from {sorted(DISTANCES)}"
            )

    def __init__(
        self,
        layer: str,
        distance: str = "cosine",
        weight: float = 1.0,
        phases=("train",),
        clean_key: str = "clean_inputs",
        detach_clean: bool = True,
    ):
        if not isinstance(layer, str) or not layer:
            raise ConfigError(f"representation_matching: layer must be a module name, got {layer!r}")
        self.check_options(dict(layer=layer, distance=distance, weight=weight, phases=phases,
                                clean_key=clean_key, detach_clean=detach_clean))
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"representation_matching: weight must be a number >= 0, got {weight!r}")
        phases = check_phases("representation_matching", phases)
        self.layer = layer
        self.layers = [layer]
        self.distance = distance
        self.weight = float(weight)
        self.phases = phases
        self.clean_key = clean_key
        self.detach_clean = bool(detach_clean)
        self._takes_key = False

    def setup(self, state):
        super().setup(state)
        self._takes_key = accepts_data_key(state.model)

    def post_forward(self, state):
        if self._capture is None:
            return
        capture = self._capture
        try:
            noisy = capture[self.layer]
            if self.clean_key not in state.extras:
                raise ModuleRequirementError(
                    f"main-loop module {self.name!r}: the batch has no extras[{self.clean_key!r}] "
                    "with the clean inputs; add the 'noise_augmentation' module (it stores them) or "
                    "let the dataset provide them"
                )
            clean_inputs = state.extras[self.clean_key]
            capture.clear()
            with torch.no_grad() if self.detach_clean else torch.enable_grad():
                if self._takes_key and state.data_key is not None:
                    state.model(clean_inputs, data_key=state.data_key)
                else:
                    state.model(clean_inputs)
            clean = capture[self.layer]
        finally:
            self.release()
        if not isinstance(noisy, torch.Tensor) or not isinstance(clean, torch.Tensor):
            raise TrainingError(
                f"representation_matching: layer {self.layer!r} returns {type(noisy).__name__}, "
                "not a tensor; choose a layer whose output is a tensor"
            )
        term = DISTANCES[self.distance](noisy, clean)
        state.loss = state.loss + self.weight * term
        state.accumulate("representation_matching_loss", term, noisy.shape[0])
