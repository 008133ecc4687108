"""What a search may try for one config field: ranges and choices, checked when they are written.

Each kind of dimension maps to one of Optuna's distributions, so every
Optuna sampler can draw from it.  They are checked at once, so an empty or
inverted range or an unusable choice fails where it is written, not in a
worker:

* :class:`Uniform` (``step`` for a grid of floats) and :class:`LogUniform`
  for floats such as a learning rate or a temperature;
* :class:`Integer` for counts such as an unfreeze epoch;
* :class:`Categorical` for anything else: names, flags, layer sizes.

A categorical choice must be hashable (it becomes part of a config's hash):
a list of layer sizes is written as a tuple, ``(128, 64)``, which the config
stores as the list ``[128, 64]``.  Optuna's storage keeps categorical values
of its own kinds (None, bool, int, float, str) as they are; other choices
are shown to Optuna by their canonical JSON text (``"[128, 64]"``) and turned
back into the value here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..hashing import canonical_json

_OPTUNA_KINDS = (type(None), bool, int, float, str)


def _number(owner: str, name: str, value, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        what = "an int" if integer else "a finite number"
        raise ConfigError(f"{owner}: {name} must be {what}, got {value!r}.")


def _check_range(owner: str, low, high, integer: bool = False) -> None:
    _number(owner, "low", low, integer)
    _number(owner, "high", high, integer)
    if low > high:
        raise ConfigError(f"{owner}: the range is inverted (low {low!r} > high {high!r}); swap the bounds.")
    if low == high:
        raise ConfigError(
            f"{owner}: the range is empty (low == high == {low!r}); give low < high, or leave the field out "
            "of the space and set it in the base config."
        )


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]`` (on a grid of ``step`` when given)."""

    low: float
    high: float
    step: float | None = None

    def __post_init__(self):
        _check_range(repr(self), self.low, self.high)
        if self.step is not None:
            _number(repr(self), "step", self.step)
            if not 0 < self.step <= self.high - self.low:
                raise ConfigError(f"{self!r}: step must be > 0 and at most high - low.")

    def to_optuna(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.low), float(self.high), step=self.step)

    def decode(self, value):
        return float(value)

    def representatives(self) -> list:
        return [float(self.low), float(self.high)]

    def grid(self, key: str) -> list:
        if self.step is None:
            raise ConfigError(f"space[{key!r}] is a continuous {self!r}; the grid sampler needs a step or choices.")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [float(self.low + i * self.step) for i in range(count)]


@dataclass(frozen=True)
class LogUniform:
    """A positive float drawn uniformly in log space from ``[low, high]`` (learning rates, weight decay)."""

    low: float
    high: float

    def __post_init__(self):
        _check_range(repr(self), self.low, self.high)
        if self.low <= 0:
            raise ConfigError(f"{self!r}: a log scale needs low > 0; use Uniform for ranges that include 0.")

    def to_optuna(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.low), float(self.high), log=True)

    def decode(self, value):
        return float(value)

    def representatives(self) -> list:
        return [float(self.low), float(self.high)]

    def grid(self, key: str) -> list:
        raise ConfigError(f"space[{key!r}] is a continuous {self!r}; the grid sampler needs Categorical choices.")


@dataclass(frozen=True)
class Integer:
    """An int from ``low`` to ``high`` inclusive, every ``step`` (or log-uniformly with ``log=True``)."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self):
        _check_range(repr(self), self.low, self.high, integer=True)
        _number(repr(self), "step", self.step, integer=True)
        if self.step < 1:
            raise ConfigError(f"{self!r}: step must be at least 1.")
        if self.log and (self.low < 1 or self.step != 1):
            raise ConfigError(f"{self!r}: a log scale needs low >= 1 and step 1.")

    def to_optuna(self):
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def decode(self, value):
        return int(value)

    def representatives(self) -> list:
        return [self.low, self.high]

    def grid(self, key: str) -> list:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class Categorical:
    """One of ``choices``; each must be hashable (write lists as tuples) and storable in a config."""

    choices: tuple

    def __init__(self, choices):
        if isinstance(choices, (str, bytes)) or not isinstance(choices, (list, tuple)):
            raise ConfigError(f"Categorical needs a list or tuple of choices, got {choices!r}.")
        if not choices:
            raise ConfigError("Categorical has no choices; give at least two values to choose from.")
        for choice in choices:
            try:
                hash(choice)
            except TypeError:
                hint = f" write it as the tuple {tuple(choice)!r}" if isinstance(choice, list) else (
                    " put each of its entries in a space dimension of its own")
                raise ConfigError(
                    f"Categorical choice {choice!r} is a {type(choice).__name__}, which is not hashable;{hint}."
                ) from None
            try:
                canonical_json(choice, "choice")
            except ConfigError as error:
                raise ConfigError(f"Categorical choice {choice!r} cannot be stored in a config: {error}") from None
        labels = [canonical_json(choice, "choice") for choice in choices]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ConfigError(f"Categorical choices repeat {repeated}; list each choice once.")
        object.__setattr__(self, "choices", tuple(choices))

    @property
    def _labelled(self) -> bool:
        return not all(type(choice) in _OPTUNA_KINDS for choice in self.choices)

    def _options(self) -> list:
        return [canonical_json(c, "choice") for c in self.choices] if self._labelled else list(self.choices)

    def to_optuna(self):
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self._options())

    def decode(self, value):
        if not self._labelled:
            return value
        return self.choices[self._options().index(value)]

    def encode(self, value):
        """The Optuna value of the choice ``value`` (its label when choices are labelled)."""
        return canonical_json(value, "choice") if self._labelled else value

    def representatives(self) -> list:
        return list(self.choices)

    def grid(self, key: str) -> list:
        return self._options()


DIMENSIONS = (Uniform, LogUniform, Integer, Categorical)


def as_dimension(key: str, value):
    """``value`` as one of :data:`DIMENSIONS`; Optuna's own distributions are accepted and converted."""
    if isinstance(value, DIMENSIONS):
        return value
    try:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    except ImportError:  # pragma: no cover - optuna is a dependency
        FloatDistribution = IntDistribution = CategoricalDistribution = ()
    if isinstance(value, FloatDistribution):
        if value.log:
            return LogUniform(value.low, value.high)
        return Uniform(value.low, value.high, value.step)
    if isinstance(value, IntDistribution):
        return Integer(value.low, value.high, value.step, value.log)
    if isinstance(value, CategoricalDistribution):
        return Categorical(list(value.choices))
    raise ConfigError(
        f"space[{key!r}] is {value!r}; give Uniform(low, high), LogUniform(low, high), Integer(low, high) "
        "or Categorical([...]) from nntransfer.search (or an Optuna distribution)."
    )
