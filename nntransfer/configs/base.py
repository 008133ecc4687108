"""Typed, keyword-only config objects whose hash identifies a table row.

A config names the function that builds a dataset, model or trainer (``fn``)
and the keyword arguments it is called with.  Declaring them as a class with
annotated defaults gives one place where a setting is named, typed and
defaulted, and catches a misspelled keyword before it is silently ignored by
``**kwargs`` or stored under a new hash::

    class MyData(DatasetConfig):
        fn = "mylab.data.load"       # def load(seed, *, batch_size=64, classes=None)
        batch_size: int = 64
        classes: list | None = None

    config = MyData(batch_size=32, comment="smaller batches")
    config.key   # {"dataset_fn": "mylab.data.load", "dataset_hash": "..."}

A declared class lists every keyword parameter of its function with the same
defaults (``DatasetConfig.for_fn`` derives such a class from the signature).

The hash covers every hashed field, defaults included, so a row never changes
identity because a default was left out.  ``comment`` and the fields listed in
``descriptive_fields`` describe a config without changing what it computes,
so they are not hashed.
"""

import copy
import difflib
import json
import typing

from nntransfer.configs.types import coerce
from nntransfer.errors import ConfigError
from nntransfer.hashing import canonical_json, config_hash, from_jsonable, to_jsonable

_NO_DEFAULT = object()

_CLASS_SETTINGS = ("kind", "fn", "descriptive_fields", "extra_allowed", "omitted_when_none")


class Field(typing.NamedTuple):
    """One declared setting: its annotation and (already checked) default."""

    annotation: typing.Any
    default: typing.Any

    @property
    def required(self):
        return self.default is _NO_DEFAULT


class Config:
    """Base of all configs; subclass :class:`DatasetConfig`, :class:`ModelConfig`
    or :class:`TrainerConfig` rather than this class.

    Class-level settings (not fields):
      ``fn``: dotted path of the function the config is for.
      ``descriptive_fields``: extra field names that are not hashed (``comment``
      never is).
      ``extra_allowed``: accept keywords that are not declared (for functions
      that take ``**kwargs``); they must be JSON-able and are hashed.
      ``omitted_when_none``: fields left out of :meth:`to_dict` (and so out of
      the hash) while they are ``None``, so that adding such an optional
      field to a class does not change the hash of existing configs.
    """

    kind: typing.ClassVar[str | None] = None
    fn: typing.ClassVar[str | None] = None
    descriptive_fields: typing.ClassVar[tuple[str, ...]] = ()
    extra_allowed: typing.ClassVar[bool] = False
    omitted_when_none: typing.ClassVar[tuple[str, ...]] = ()
    _fields: typing.ClassVar[dict[str, Field]]

    comment: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._fields = _collect_fields(cls)
        unknown = [name for name in cls.descriptive_fields if name not in cls._fields]
        if unknown:
            raise ConfigError(
                f"{cls.__name__}.descriptive_fields names {unknown}, which are not fields. "
                f"Fields are {list(cls._fields)}."
            )

    def __init__(self, *args, **kwargs):
        cls = type(self)
        if args:
            raise ConfigError(
                f"{cls.__name__} takes keyword arguments only, e.g. "
                f"{cls.__name__}({', '.join(f'{n}=...' for n in cls._fields if n != 'comment')})."
            )
        if cls.kind is None:
            raise ConfigError(
                f"{cls.__name__} has no kind; subclass DatasetConfig, ModelConfig or TrainerConfig."
            )
        if not isinstance(cls.fn, str) or "." not in cls.fn.strip("."):
            raise ConfigError(
                f"{cls.__name__}.fn is {cls.fn!r}; set the class attribute fn to the dotted "
                "path of the function, e.g. fn = 'package.module.function_name'."
            )
        object.__setattr__(self, "_extra", {})
        missing = [n for n, f in cls._fields.items() if f.required and n not in kwargs]
        if missing:
            raise ConfigError(f"{cls.__name__} needs a value for {missing} (they have no default).")
        for name, field in cls._fields.items():
            if name not in kwargs:
                object.__setattr__(self, name, copy.deepcopy(field.default))
        for name, value in kwargs.items():
            setattr(self, name, value)
        check = cls.__dict__.get("_check_options")
        if check is not None:
            check(self.to_dict())

    def __setattr__(self, name, value):
        cls = type(self)
        if name in cls._fields:
            value = coerce(value, cls._fields[name].annotation, f"{cls.__name__}.{name}")
            object.__setattr__(self, name, value)
        elif cls.extra_allowed and not name.startswith("_"):
            self._extra[name] = coerce(value, typing.Any, f"{cls.__name__}.{name}")
        else:
            raise ConfigError(_unknown_field_message(cls, name))

    def __getattr__(self, name):
        extra = self.__dict__.get("_extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def descriptive(cls):
        """Names of the fields that are not hashed."""
        return ("comment",) + tuple(n for n in cls.descriptive_fields if n != "comment")

    def to_dict(self, include_descriptive=False):
        """The hashed fields (defaults included) as a new dict; with
        ``include_descriptive=True`` also ``comment`` and other descriptive fields."""
        skipped = () if include_descriptive else self.descriptive()
        values = {
            name: getattr(self, name)
            for name in self._fields
            if name not in skipped and not (name in self.omitted_when_none and getattr(self, name) is None)
        }
        values.update(self._extra)
        return copy.deepcopy(values)

    @classmethod
    def from_dict(cls, values):
        """Rebuild a config from :meth:`to_dict` output (descriptive fields optional)."""
        if not isinstance(values, dict):
            raise ConfigError(f"{cls.__name__}.from_dict needs a dict, got {type(values).__name__}.")
        return cls(**values)

    def to_json(self, indent=None):
        """All fields as JSON; NaN and infinities tagged as in :mod:`nntransfer.hashing`."""
        return json.dumps(
            to_jsonable(self.to_dict(include_descriptive=True), type(self).__name__),
            sort_keys=True,
            indent=indent,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text):
        """Rebuild a config from :meth:`to_json` output, exactly."""
        try:
            values = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{cls.__name__}.from_json got text that is not JSON: {error}.") from None
        return cls.from_dict(from_jsonable(values))

    @property
    def hash(self):
        """Hash of the hashed fields, defaults included (32 hex characters)."""
        return config_hash(self.to_dict())

    @property
    def key(self):
        """The primary key of this config's row: ``{"<kind>_fn": ..., "<kind>_hash": ...}``."""
        return {f"{self.kind}_fn": self.fn, f"{self.kind}_hash": self.hash}

    def diff(self):
        """Fields whose value differs from the default (all extras), for display."""
        changed = {}
        for name, field in self._fields.items():
            value = getattr(self, name)
            if field.required or canonical_json(value) != canonical_json(field.default):
                changed[name] = copy.deepcopy(value)
        changed.update(copy.deepcopy(self._extra))
        return changed

    @classmethod
    def for_fn(cls, fn_path, **values):
        """Config for ``fn_path`` with fields taken from the function's signature."""
        from nntransfer.configs.functions import config_class_for

        if cls.kind is None:
            raise ConfigError(
                "Config.for_fn needs a kind: call DatasetConfig.for_fn, ModelConfig.for_fn "
                "or TrainerConfig.for_fn."
            )
        return config_class_for(fn_path, cls.kind)(**values)

    def check_matches_function(self):
        """Refuse a declared class whose key would select no row.

        The table stores the config completed with its function's defaults
        (and checked by the function's ``check_config``), so a declared class
        must hash to that same entry; one that leaves out some of the
        function's parameters, or declares a type that stores a value
        differently, is refused before anything is inserted.
        """
        from nntransfer.configs.functions import config_class_for

        if type(self).__dict__.get("_from_signature", False):
            return
        values = self.to_dict()
        completed = config_class_for(self.fn, self.kind)(**values).to_dict()
        if config_hash(completed) == self.hash:
            return
        missing = sorted(set(completed) - set(values))
        dropped = sorted(set(values) - set(completed))
        changed = sorted(
            name for name in values if name in completed and canonical_json(values[name]) != canonical_json(completed[name])
        )
        problems = []
        if missing:
            problems.append(f"it does not hash the parameters {missing} of {self.fn}")
        if dropped:
            problems.append(f"it hashes {dropped}, which the table leaves out while they are None")
        if changed:
            problems.append(f"the function's signature stores {changed} with another type")
        raise ConfigError(
            f"{type(self).__name__} does not describe the entry the database stores for it: "
            f"{' and '.join(problems)}, so its key would select no row. Declare every parameter of "
            f"the function with the function's types as hashed fields, or use "
            f"{self.kind.capitalize()}Config.for_fn({self.fn!r}, ...)."
        )

    def __reduce_ex__(self, protocol):
        """Signature-derived classes are not module attributes, so pickle them by path."""
        if type(self).__dict__.get("_from_signature", False):
            from nntransfer.configs.functions import rebuild_config

            return (rebuild_config, (self.fn, self.kind, self.to_dict(include_descriptive=True)))
        return super().__reduce_ex__(protocol)

    def __eq__(self, other):
        if not isinstance(other, Config):
            return NotImplemented
        return (self.kind, self.fn) == (other.kind, other.fn) and canonical_json(
            self.to_dict(include_descriptive=True)
        ) == canonical_json(other.to_dict(include_descriptive=True))

    __hash__ = None  # mutable; use config.hash for the row identity

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}" for name, value in self.diff().items())
        return f"{type(self).__name__}({shown})"

    def _repr_html_(self):
        """Jupyter's view: the function in short, the comment, every value (the changed ones in bold)."""
        from nntransfer.views.html import config_html

        return config_html(self.kind, self.fn, self.to_dict(), self.comment, set(self.diff()), self.hash)


def _collect_fields(cls):
    """Fields of ``cls``: annotated attributes of it and its Config bases, base first."""
    hints = _resolved_hints(cls)
    fields = {}
    for owner in reversed(cls.__mro__):
        if not (isinstance(owner, type) and issubclass(owner, Config)):
            continue
        for name in owner.__dict__.get("__annotations__", {}):
            if name.startswith("_") or name in _CLASS_SETTINGS:
                continue
            annotation = hints.get(name, typing.Any)
            if typing.get_origin(annotation) is typing.ClassVar:
                continue
            if owner is not Config and name in _RESERVED:
                raise ConfigError(
                    f"{cls.__name__} declares a field {name!r}, which is a Config attribute; "
                    "rename the field."
                )
            fields[name] = annotation
    _refuse_unannotated_values(cls, hints)
    return {name: _checked_field(cls, name, annotation) for name, annotation in fields.items()}


def _resolved_hints(cls):
    """Annotations as objects; string annotations that cannot be resolved count as Any."""
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:
        hints = {}
        for owner in reversed(cls.__mro__):
            for name, annotation in owner.__dict__.get("__annotations__", {}).items():
                hints[name] = typing.Any if isinstance(annotation, str) else annotation
        return hints


def _refuse_unannotated_values(cls, annotated):
    """A plain value without an annotation is almost always a forgotten annotation."""
    for name, value in cls.__dict__.items():
        if name.startswith("_") or name in annotated:
            continue
        if value is None or type(value) in (bool, int, float, str, list, tuple, dict):
            raise ConfigError(
                f"{cls.__name__}.{name} = {value!r} has no annotation, so it is not a field. "
                f"Declare it as e.g. `{name}: {type(value).__name__} = {value!r}`."
            )


def _checked_field(cls, name, annotation):
    default = getattr(cls, name, _NO_DEFAULT)
    if default is not _NO_DEFAULT:
        default = coerce(default, annotation, f"default of {cls.__name__}.{name}")
    return Field(annotation, default)


def _unknown_field_message(cls, name):
    known = list(cls._fields)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{cls.__name__} has no field {name!r}.{hint} Known fields: {known}."


Config._fields = {"comment": Field(str, "")}
_RESERVED = frozenset(n for n in dir(Config) if not n.startswith("_")) - {"comment"}


class DatasetConfig(Config):
    """Config of a dataset function ``fn(seed, **config)``."""

    kind = "dataset"


class ModelConfig(Config):
    """Config of a model function ``fn(dataloaders, seed, **config)``."""

    kind = "model"


class TrainerConfig(Config):
    """Config of a trainer function ``fn(model, dataloaders, seed, uid, cb, **config)``."""

    kind = "trainer"
