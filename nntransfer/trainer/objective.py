"""Which way an objective improves.

``early_stopping`` on ``"validation.accuracy"`` that silently *minimized* the
accuracy would stop after a few epochs and restore the worst model; asking
users to repeat what a metric's name already says invites that mistake.  So
``maximize=None`` (the default) reads the direction from the metric's name
and refuses to guess for names it does not know.
"""

from nntransfer.errors import ConfigError

MINIMIZED = ("loss", "error", "mse", "mae", "nll", "perplexity")
MAXIMIZED = ("accuracy", "acc", "correlation", "corr", "score", "f1", "auc", "r2")


def resolve_maximize(module: str, objective: str, maximize: bool | None) -> bool:
    """``maximize`` if given, else the direction implied by the objective's metric name."""
    if maximize is not None:
        if not isinstance(maximize, bool):
            raise ConfigError(f"{module}: maximize must be True, False or None, got {maximize!r}.")
        return maximize
    metric = objective.rsplit(".", 1)[-1].lower()
    if metric.endswith(MINIMIZED):
        return False
    if metric.endswith(MAXIMIZED):
        return True
    raise ConfigError(
        f"{module}: cannot tell whether {objective!r} should go up or down; pass maximize=True or maximize=False."
    )
