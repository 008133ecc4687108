"""Errors raised by nntransfer.

Every error derives from :class:`NNTransferError`, so a caller can catch the
library's own failures in one place.  Messages say what was wrong and what to
do about it; nothing in the library uses ``assert`` to check user input.
"""


class NNTransferError(Exception):
    """Base class of every error raised on purpose by nntransfer."""


class ConfigError(NNTransferError, ValueError):
    """A config has an unknown key, a value of the wrong type, or cannot be hashed."""


class FunctionResolutionError(NNTransferError, ImportError):
    """A dotted function path does not import or does not name a callable."""


class DatabaseError(NNTransferError):
    """The database cannot be reached or is not in the state an operation needs."""


class DatabaseUnreachable(DatabaseError):
    """The database server does not answer (not running, wrong address, or gone for longer than the reconnect bound)."""


class FabrikantError(NNTransferError):
    """An entry names a fabrikant (user) that is not in the ``Fabrikant`` table."""


class DuplicateEntryError(NNTransferError):
    """A different entry already exists under the same key."""


class TrainingError(NNTransferError):
    """Training cannot start or cannot go on (bad trainer input, NaN loss, ...)."""


class ModuleRequirementError(TrainingError):
    """A main-loop module needs something the run does not provide."""


class TransferError(NNTransferError):
    """A transfer step cannot be carried out (nothing matched, misaligned data, ...)."""


class DataError(NNTransferError):
    """A dataset cannot be built from the given options or files."""


class TrainingPruned(NNTransferError):
    """A search stopped a training early because its trial is not promising; recorded as pruned, not as an error."""


class JobTakenOver(TrainingError):
    """Another worker took this worker's job over (or stored its result first); this attempt's result is discarded."""


class UntrustedFunctionError(FunctionResolutionError):
    """A function named in a database row lies outside the packages this deployment allows."""
