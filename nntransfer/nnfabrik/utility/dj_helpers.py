"""nnfabrik's ``utility.dj_helpers``: hashing, numpy clean-up and the schema class.

``make_hash`` is nnfabrik's hash, bit for bit (:func:`nntransfer.hashing.make_hash`).
``CustomSchema`` is a DataJoint schema that connects the way nntransfer does
(the embedded database unless a server is configured, the artifact store set
up) and whose ``jobs`` can be restricted and deleted as in nnfabrik's
checkpoint notebook: ``(schema.jobs & "status='error'").delete()``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...db import connect, import_datajoint
from ...hashing import make_hash
from ..unsupported import unsupported

dj = import_datajoint()

Schema = dj.Schema

__all__ = ["make_hash", "cleanup_numpy_scalar", "CustomSchema", "Schema", "clone_conn", "gitlog",
           "create_param_expansion", "make_definition", "need_to_commit", "get_origin_url", "check_repo_commit"]


def cleanup_numpy_scalar(data):
    """Replace numpy scalars by the Python values they hold, through dicts (in place), lists and tuples (as lists)."""
    if isinstance(data, np.generic) and data.shape == ():
        return data.item()
    if isinstance(data, Mapping):
        for key, value in data.items():
            data[key] = cleanup_numpy_scalar(value)
        return data
    if isinstance(data, (list, tuple)):
        return [cleanup_numpy_scalar(item) for item in data]
    return data


class JobsView:
    """The job tables of a schema's computed tables, restricted together (nnfabrik's ``schema.jobs``)."""

    def __init__(self, jobs, restriction=None):
        self._jobs = list(jobs)
        self._restriction = restriction

    def _restricted(self):
        return [job if self._restriction is None else job & self._restriction for job in self._jobs]

    def __and__(self, restriction):
        if self._restriction is not None:
            raise TypeError("restrict schema.jobs once, e.g. schema.jobs & \"status='error'\".")
        return JobsView(self._jobs, restriction)

    def delete(self, *args, **kwargs) -> int:
        """Delete the selected jobs of every table; return how many there were."""
        count = 0
        for job in self._restricted():
            count += len(job)
            job.delete_quick()
        return count

    def __len__(self):
        return sum(len(job) for job in self._restricted())

    def __iter__(self):
        return iter(self._restricted())

    def __repr__(self):
        return "\n".join(repr(job) for job in self._restricted()) or "no job tables"


class CustomSchema(dj.Schema):
    """A DataJoint schema connected as nntransfer connects (see the module docstring)."""

    def __init__(self, schema_name=None, context=None, *, connection=None, **kwargs):
        super().__init__(schema_name, context, connection=connection or connect(), **kwargs)

    @property
    def jobs(self) -> JobsView:
        return JobsView(super().jobs)


clone_conn = unsupported(
    "utility.dj_helpers.clone_conn",
    "checkpoints are written while no transaction is open, so no second connection is needed; use dj.conn().",
)
_GIT = ("record the code version yourself (e.g. the commit in the trainer's output or comment); nntransfer does "
        "not inspect git repositories")
gitlog = unsupported("utility.dj_helpers.gitlog", _GIT)
need_to_commit = unsupported("utility.dj_helpers.need_to_commit", _GIT)
get_origin_url = unsupported("utility.dj_helpers.get_origin_url", _GIT)
check_repo_commit = unsupported("utility.dj_helpers.check_repo_commit", _GIT)
_EXPANSION = ("nntransfer.analysis.results.results(table) gives every entry with its configs flattened into "
              "DataFrame columns")
create_param_expansion = unsupported("utility.dj_helpers.create_param_expansion", _EXPANSION)
make_definition = unsupported("utility.dj_helpers.make_definition", _EXPANSION)
