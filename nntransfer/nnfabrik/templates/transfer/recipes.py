"""nnfabrik's transfer recipe tables, declared in the schema of :mod:`nntransfer.nnfabrik.main`.

Pass them to ``my_nnfabrik(..., additional_tables=(...))`` to have them in
your schema, naming that schema's configs, as nnfabrik's example does.
``add_entry(transfer_from, transfer_to, transfer_step, data_transfer=False)``
and the planning are nntransfer's (:mod:`nntransfer.tables.recipes`); a
recipe table can be restricted by the fields of its sides as nnfabrik's
columns: ``DatasetTransferRecipe() & {"dataset_fn": ...}`` (``transfer_to``)
or ``{"prev_dataset_fn": ...}`` (``transfer_from``).
"""

from __future__ import annotations

from ....db import import_datajoint
from ....tables import recipes as _core
from ... import main

dj = import_datajoint()

__all__ = ["Recipe", "DatasetTransferRecipe", "ModelTransferRecipe", "TrainerTransferRecipe",
           "TrainerDatasetTransferRecipe", "TrainedModelTransferRecipe"]

Recipe = _core.TransferRecipe


def _recipe(core_class):
    attributes = {"kinds": core_class.kinds, "definition": core_class.definition, "__doc__": core_class.__doc__,
                  "__module__": __name__, "dataset_table": main.Dataset, "model_table": main.Model,
                  "trainer_table": main.Trainer}
    return main.schema(type(core_class.__name__, (Recipe, dj.Manual), attributes), context=vars(main))


DatasetTransferRecipe = _recipe(_core.DatasetTransferRecipe)
ModelTransferRecipe = _recipe(_core.ModelTransferRecipe)
TrainerTransferRecipe = _recipe(_core.TrainerTransferRecipe)
TrainerDatasetTransferRecipe = _recipe(_core.TrainerDatasetTransferRecipe)
TrainedModelTransferRecipe = _recipe(_core.TrainedModelTransferRecipe)
_GROUP = (DatasetTransferRecipe, ModelTransferRecipe, TrainerTransferRecipe, TrainerDatasetTransferRecipe,
          TrainedModelTransferRecipe)
for _table in _GROUP:
    _table.recipe_group = _GROUP
