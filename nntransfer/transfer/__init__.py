"""Pure functions on models and state_dicts for transfer steps (no database).

* :func:`load_partial` loads what fits and reports the rest (:class:`LoadReport`).
* :func:`freeze`, :func:`unfreeze`, :func:`freeze_all_but` for fine-tuning.
* :func:`model_summary` tabulates layers, shapes and frozen parameters.
* :class:`FeatureCapture` and :func:`extract_features` read representations.
"""

from nntransfer.transfer.features import (
    FeatureCapture,
    LayerNotFoundError,
    extract_features,
    get_layer,
    ordered_loader,
)
from nntransfer.transfer.freezing import (
    freeze,
    freeze_all_but,
    frozen_parameter_names,
    trainable_parameter_names,
    unfreeze,
)
from nntransfer.transfer.loading import LoadReport, load_partial
from nntransfer.transfer.summary import LayerRow, ModelSummary, model_summary

__all__ = [
    "FeatureCapture",
    "LayerNotFoundError",
    "LayerRow",
    "LoadReport",
    "ModelSummary",
    "extract_features",
    "freeze",
    "freeze_all_but",
    "frozen_parameter_names",
    "get_layer",
    "load_partial",
    "model_summary",
    "ordered_loader",
    "trainable_parameter_names",
    "unfreeze",
]
