"""Record per-epoch statistics of intermediate representations.

Watching how a layer's activations change (their scale, how many units are
silent) shows what a transfer step does to a pretrained backbone: a frozen
layer's statistics stay put, a collapsing one goes sparse.  For each named
layer and statistic the module records the epoch mean of the per-batch values
as ``"<phase>.repr.<layer>.<statistic>"`` in ``state.metrics`` and thus in the
history.  Values stay tensors until the epoch ends, so monitoring adds no
device synchronisation per batch.
"""

import torch

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean
from nntransfer.trainer.modules.layer_capture import LayerCaptureModule, check_phases


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(-1, 1)


STATISTICS = {
    "mean": lambda x, t: x.mean(),
    "std": lambda x, t: x.std(unbiased=False),
    "abs_mean": lambda x, t: x.abs().mean(),
    "sparsity": lambda x, t: (x.abs() <= t).float().mean(),
    "norm": lambda x, t: _per_sample(x).norm(dim=1).mean(),
}


class RepresentationMonitor(LayerCaptureModule):
    """Per-epoch statistics of the outputs of ``layers``.

    ``statistics``: any of ``mean``, ``std``, ``abs_mean``, ``sparsity``
    (fraction of activations with ``|x| <= sparsity_threshold``) and ``norm``
    (mean L2 norm per sample).  ``phases``: where to record.
    """

    name = "representation_monitor"
    order = 150
    added_metrics = ("repr.*",)

    @classmethod
    def check_options(cls, options):
        """Every one of ``statistics`` must name one of :data:`STATISTICS`."""
        statistics = options["statistics"]
        statistics = [statistics] if isinstance(statistics, str) else list(statistics)
        unknown = [s for s in statistics if s not in STATISTICS]
        if unknown or not statistics:
            hint = did_you_mean(unknown[0], STATISTICS) if unknown else ""
            raise ConfigError(
                f"representation_monitor: unknown statistics {unknown};{hint} choose from {sorted(STATISTICS)}"
            )

    def __init__(
        self,
        layers,
        statistics=("mean", "std", "sparsity"),
        phases=("train", "validation"),
        sparsity_threshold: float = 0.0,
    ):
        layers = [layers] if isinstance(layers, str) else list(layers)
        if not layers or not all(isinstance(name, str) and name for name in layers):
            raise ConfigError(f"representation_monitor: layers must be module names, got {layers!r}")
        self.check_options(dict(layers=layers, statistics=statistics, phases=phases,
                                sparsity_threshold=sparsity_threshold))
        statistics = [statistics] if isinstance(statistics, str) else list(statistics)
        phases = check_phases("representation_monitor", phases)
        if not isinstance(sparsity_threshold, (int, float)) or sparsity_threshold < 0:
            raise ConfigError(
                f"representation_monitor: sparsity_threshold must be a number >= 0, got {sparsity_threshold!r}"
            )
        self.layers = layers
        self.statistics = statistics
        self.phases = phases
        self.sparsity_threshold = float(sparsity_threshold)

    def post_forward(self, state):
        if self._capture is None:
            return
        outputs = dict(self._capture.outputs)
        self.release()
        for layer in self.layers:
            x = outputs.get(layer)
            if not isinstance(x, torch.Tensor):
                continue  # the layer did not run for this batch (e.g. another task's head)
            x = x.float()
            for statistic in self.statistics:
                value = STATISTICS[statistic](x, self.sparsity_threshold)
                state.accumulate(f"repr.{layer}.{statistic}", value, x.shape[0])
