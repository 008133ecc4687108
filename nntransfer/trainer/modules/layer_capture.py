"""Shared behaviour of the modules that look at intermediate layers.

Representation matching and monitoring hook named layers for one forward pass
at a time: the hooks go on in ``pre_forward`` and come off as soon as the
outputs are read, so the user's model never keeps them (a batch skipped
between the two events, the end of training, or an exception that ends it
removes them too).
"""

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.module import MainLoopModule
from nntransfer.transfer.features import FeatureCapture, LayerNotFoundError, get_layer

PHASES = ("train", "validation", "test")


def check_phases(module: str, phases) -> tuple:
    phases = (phases,) if isinstance(phases, str) else tuple(phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise ConfigError(f"{module}: unknown phases {unknown}; choose from {list(PHASES)}")
    return phases


class LayerCaptureModule(MainLoopModule):
    """A module that captures ``self.layers`` in the phases ``self.phases``."""

    layers: list
    phases: tuple
    detach = True
    _capture = None

    def setup(self, state):
        for layer in self.layers:
            try:
                get_layer(state.model, layer)
            except LayerNotFoundError as error:
                raise ModuleRequirementError(f"main-loop module {self.name!r}: {error}") from error

    def release(self):
        if self._capture is not None:
            self._capture.remove()
            self._capture = None

    def pre_forward(self, state):
        self.release()  # a batch skipped after pre_forward may have left hooks behind
        if state.phase in self.phases:
            self._capture = FeatureCapture(state.model, self.layers, detach=self.detach)

    def teardown(self, state):
        self.release()
