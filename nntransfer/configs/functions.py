"""Config classes derived from a builder function's signature.

The function's keyword parameters, their annotations and their defaults are
the single source of truth: a config class written by hand could drift from
the function it configures, one read from the signature cannot.  The
parameters that the nnfabrik contract passes itself (``seed``, ``dataloaders``,
...) are not config fields.
"""

import functools
import inspect
import re
import typing

from nntransfer.resolve import resolve_fn
from nntransfer.configs.base import _CLASS_SETTINGS, DatasetConfig, ModelConfig, TrainerConfig
from nntransfer.errors import ConfigError

CONTRACT_PARAMETERS = {
    "dataset": ("seed",),
    "model": ("dataloaders", "seed"),
    "trainer": ("model", "dataloaders", "seed", "uid", "cb"),
}
"""Per kind, the parameters the caller passes itself; they are not config fields."""

RUNTIME_PARAMETERS = {"dataset": ("transfer_data",), "model": (), "trainer": ()}
"""Per kind, parameters that some functions take and the table layer fills at
run time (the previous step's transfer data): not config fields either, since
they hold arrays, not parameters."""

TABLE_OPTIONS = {"dataset": {}, "model": {"transfer": dict | bool}, "trainer": {}}
"""Per kind, config fields that every function of the kind gets although its
signature lacks them: options the table layer reads and takes out before the
call.  ``transfer`` (model configs) steers how a transfer step loads the
previous step's state: ``{"rename": {...}, "include": [...], "exclude": [...]}``;
``True`` (or ``False``), as nnfabrik's configs hold it, is nnfabrik's flexible
load: every entry whose name and shape fit is loaded and the rest reported.
They are hashed when set, since they change what is trained, and left out
while ``None`` (see ``Config.omitted_when_none``)."""

CHECK_HOOK = "check_config"
"""A function may carry ``fn.check_config(config: dict) -> None``: its own check of
the options it is given (names of modules, optimizers, metrics, ...) that raises
ConfigError.  Configs derived from the function run it whenever one is made, so
a typo inside a nested option fails before anything is hashed or inserted; the
function stays importable without nntransfer (the attribute is optional)."""

OMITTED_HOOK = "omitted_when_none"
"""A function may carry ``fn.omitted_when_none = ("name", ...)``: keyword
parameters with default ``None`` that configs leave out of the hash (and of
the stored row) while they are ``None``.  Adding such an option to a function
therefore keeps the hash of every existing config of it, and every config
class declared for it stays valid."""

TRANSFER_KEYS = ("rename", "include", "exclude")
"""Keys of a model config's ``transfer`` option (the keywords of
:func:`nntransfer.transfer.loading.load_partial` that a config may set)."""

_BASES = {"dataset": DatasetConfig, "model": ModelConfig, "trainer": TrainerConfig}


def config_class_for(fn_path, kind):
    """Return the Config subclass for the function at ``fn_path`` (cached per path and kind).

    Functions that take ``**kwargs`` get a class that accepts any extra
    JSON-able keyword.  A parameter whose default is ``None`` also accepts
    ``None`` whatever its annotation says.
    """
    if kind not in _BASES:
        raise ConfigError(f"kind must be one of {list(_BASES)}, got {kind!r}.")
    if not isinstance(fn_path, str):
        raise ConfigError(f"fn_path must be a dotted path string, got {type(fn_path).__name__}.")
    return _build_class(fn_path, kind)


@functools.lru_cache(maxsize=None)
def _build_class(fn_path, kind):
    function = resolve_fn(fn_path, f"{kind}_fn")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{fn_path}: its signature cannot be read ({error}).") from None
    parameters = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    contract = CONTRACT_PARAMETERS[kind]
    not_taken = [name for name in contract if name not in parameters and not takes_kwargs]
    if not_taken:
        raise ConfigError(
            f"{fn_path} does not take {not_taken}, which every {kind} function is called "
            f"with ({', '.join(contract)}); add them to its parameters."
        )
    hints = _parameter_hints(function)
    annotations = {}
    namespace = {
        "fn": fn_path,
        "extra_allowed": takes_kwargs,
        "_from_signature": True,
        "_check_options": _options_check(kind, getattr(function, CHECK_HOOK, None)),
        "__module__": function.__module__,
    }
    for parameter in parameters.values():
        if parameter.name in contract + RUNTIME_PARAMETERS[kind] or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise ConfigError(
                f"{fn_path}: parameter {parameter.name!r} is positional-only, but config "
                "values are passed by keyword. Make it a normal or keyword-only parameter."
            )
        if parameter.name in _CLASS_SETTINGS:
            raise ConfigError(
                f"{fn_path} has a parameter {parameter.name!r}, which is a setting of every config "
                f"class ({', '.join(_CLASS_SETTINGS)}), so it cannot be a config field. Rename the "
                "parameter."
            )
        if parameter.name == "comment":
            raise ConfigError(
                f"{fn_path} has a parameter 'comment', which would collide with the config's "
                "descriptive comment (that is never passed to the function). Rename the parameter."
            )
        annotation = hints.get(parameter.name, typing.Any)
        if parameter.default is not parameter.empty:
            if parameter.default is None:
                annotation = typing.Optional[annotation]
            namespace[parameter.name] = parameter.default
        annotations[parameter.name] = annotation
    added = tuple(option for option in TABLE_OPTIONS[kind] if option not in parameters)
    for option in added:
        annotations[option] = typing.Optional[TABLE_OPTIONS[kind][option]]
        namespace[option] = None
    own = tuple(getattr(function, OMITTED_HOOK, ()))
    not_optional = [name for name in own if name not in parameters or parameters[name].default is not None]
    if not_optional:
        raise ConfigError(
            f"{fn_path}.{OMITTED_HOOK} names {not_optional}, which are not keyword parameters with default None."
        )
    namespace["omitted_when_none"] = added + own
    namespace["__annotations__"] = annotations
    namespace["__doc__"] = f"Config of {fn_path}, derived from its signature."
    name = "".join(part.capitalize() for part in function.__name__.split("_")) + "Config"
    try:
        return type(name, (_BASES[kind],), namespace)
    except ConfigError as error:
        raise ConfigError(f"{fn_path}: {error}") from None


def _options_check(kind, own_check):
    """The check a derived class runs when made: the table options, then the function's own hook."""

    def check(config):
        check_table_options(kind, config)
        if own_check is not None:
            own_check(config)

    return check


def check_table_options(kind, config):
    """Refuse a table option whose content the table layer could not use (see :data:`TABLE_OPTIONS`)."""
    transfer = config.get("transfer") if kind == "model" else None
    if transfer is None or isinstance(transfer, bool):
        return
    where = "model_config['transfer']"
    unknown = sorted(set(transfer) - set(TRANSFER_KEYS))
    if unknown:
        from nntransfer.resolve import did_you_mean

        raise ConfigError(
            f"{where} has unknown keys {unknown};{did_you_mean(unknown[0], TRANSFER_KEYS)} known are "
            f"{list(TRANSFER_KEYS)}."
        )
    rename = transfer.get("rename")
    if rename is not None and not (
        isinstance(rename, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items())
    ):
        raise ConfigError(f"{where}['rename'] must map old name prefixes to new ones (str -> str), got {rename!r}.")
    for name in ("include", "exclude"):
        patterns = transfer.get(name)
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if patterns is None:
            continue
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"{where}[{name!r}] must be a name pattern or a list of them, got {patterns!r}.")
        for pattern in patterns:
            if pattern.startswith("re:"):
                try:
                    re.compile(pattern[3:])
                except re.error as error:
                    raise ConfigError(f"{where}[{name!r}]: {pattern!r} is not a valid regular expression ({error}).") from None


def split_table_options(fn_path, kind, config):
    """Split a stored config into the function's keywords and the table options.

    A function whose own signature has a parameter of a table option's name
    gets it passed; otherwise the option goes to the table layer.
    """
    parameters = inspect.signature(resolve_fn(fn_path, f"{kind}_fn")).parameters
    options = {name: config[name] for name in TABLE_OPTIONS[kind] if name in config and name not in parameters}
    return {name: value for name, value in config.items() if name not in options}, options


def rebuild_config(fn_path, kind, values):
    """Unpickle a signature-derived config: rebuild its class, then the config."""
    return config_class_for(fn_path, kind).from_dict(values)


def _parameter_hints(function):
    """Resolved annotations; if some cannot be resolved, those count as Any."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        raw = getattr(function, "__annotations__", {})
        return {name: ann for name, ann in raw.items() if not isinstance(ann, str)}
