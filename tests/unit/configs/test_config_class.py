"""Config subclasses: keyword-only construction, type checks, hashing, round trips."""

import math
import typing

import numpy as np
import pytest

from nntransfer.configs import DatasetConfig, ModelConfig, TrainerConfig
from nntransfer.errors import ConfigError
from nntransfer.hashing import config_hash


class DigitsConfig(DatasetConfig):
    fn = "nntransfer.datasets.digits.digits_dataset_fn"
    batch_size: int = 64
    lr: float = 0.1
    classes: list[int] | None = None
    shape: tuple[int, int] = (8, 8)
    split: typing.Literal["train", "test"] = "train"
    options: dict = {}
    notes: str = ""
    descriptive_fields = ("notes",)


def test_defaults_and_keyword_values():
    config = DigitsConfig(batch_size=32, comment="smaller batches")
    assert config.batch_size == 32
    assert config.lr == 0.1
    assert config.comment == "smaller batches"
    assert config.to_dict() == {
        "batch_size": 32,
        "lr": 0.1,
        "classes": None,
        "shape": (8, 8),
        "split": "train",
        "options": {},
    }


def test_positional_arguments_are_refused():
    with pytest.raises(ConfigError, match="keyword arguments only"):
        DigitsConfig(32)


def test_unknown_keyword_names_it_suggests_and_lists_known():
    with pytest.raises(ConfigError) as error:
        DigitsConfig(batch_sise=32)
    message = str(error.value)
    assert "'batch_sise'" in message
    assert "Did you mean 'batch_size'?" in message
    assert "'classes'" in message and "'lr'" in message


def test_unknown_attribute_assignment_is_refused():
    config = DigitsConfig()
    with pytest.raises(ConfigError, match="no field 'bach_size'"):
        config.bach_size = 3


def test_mutable_defaults_are_copied_per_instance():
    first, second = DigitsConfig(), DigitsConfig()
    first.options["x"] = 1
    assert second.options == {}
    assert DigitsConfig().options == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", True),
        ("batch_size", 3.0),
        ("batch_size", "3"),
        ("lr", True),
        ("lr", "0.1"),
        ("classes", [1, "a"]),
        ("classes", 3),
        ("shape", (1, 2, 3)),
        ("split", "val"),
        ("options", {frozenset(): 2}),
        ("options", {"a": object()}),
    ],
)
def test_wrong_types_are_refused_with_the_field_name(field, value):
    with pytest.raises(ConfigError, match=f"DigitsConfig.{field}"):
        DigitsConfig(**{field: value})


def test_nested_mismatch_names_the_inner_path():
    with pytest.raises(ConfigError, match=r"declared as tuple\[int, int\], but DigitsConfig.shape\[1\] is 'a'"):
        DigitsConfig(shape=(1, "a"))


def test_int_for_float_field_is_stored_as_float_and_hashes_the_same():
    as_int, as_float = DigitsConfig(lr=1), DigitsConfig(lr=1.0)
    assert type(as_int.lr) is float
    assert as_int.hash == as_float.hash


def test_numpy_scalars_and_list_for_tuple_are_converted():
    config = DigitsConfig(batch_size=np.int64(16), lr=np.float32(0.5), shape=[4, 4])
    assert type(config.batch_size) is int and config.batch_size == 16
    assert type(config.lr) is float and config.lr == 0.5
    assert config.shape == (4, 4)


def test_assignment_is_validated_too():
    config = DigitsConfig()
    config.lr = 2
    assert type(config.lr) is float
    with pytest.raises(ConfigError, match="DigitsConfig.batch_size"):
        config.batch_size = "many"


def test_descriptive_fields_do_not_change_the_hash():
    plain = DigitsConfig()
    described = DigitsConfig(comment="a comment", notes="some notes")
    assert plain.hash == described.hash
    assert "comment" not in described.to_dict() and "notes" not in described.to_dict()
    assert described.to_dict(include_descriptive=True)["notes"] == "some notes"


def test_hash_covers_defaults_and_every_hashed_field():
    config = DigitsConfig()
    assert config.hash == config_hash(config.to_dict())
    assert config.hash != DigitsConfig(split="test").hash
    assert config.hash != DigitsConfig(options={"a": 1}).hash


def test_hash_is_pinned():
    """The defaults' hash; changing it changes the identity of stored rows."""
    assert DigitsConfig().hash == "e1f4029db65fee044f51ca44c30a436c"


def test_key_names_kind_fn_and_hash():
    config = DigitsConfig()
    assert config.key == {"dataset_fn": DigitsConfig.fn, "dataset_hash": config.hash}


def test_kinds_of_the_three_bases():
    class Net(ModelConfig):
        fn = "pkg.models.net"

    class Fit(TrainerConfig):
        fn = "pkg.trainers.fit"

    assert set(Net().key) == {"model_fn", "model_hash"}
    assert set(Fit().key) == {"trainer_fn", "trainer_hash"}


def test_dict_round_trip():
    config = DigitsConfig(batch_size=8, classes=[1, 2], comment="c", notes="n")
    assert DigitsConfig.from_dict(config.to_dict(include_descriptive=True)) == config
    assert DigitsConfig.from_dict(config.to_dict()).hash == config.hash


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"lr": 0.1 + 0.2, "classes": [0, 9], "comment": "ünïcode"},
        {"lr": math.nan, "options": {"a": {"b": [None, 1e-300, -0.0]}, "c": math.inf}},
        {"lr": -math.inf, "shape": (1, 2), "split": "test", "options": {"t": (1, 2)}},
    ],
)
def test_json_round_trip_is_exact(values):
    config = DigitsConfig(**values)
    restored = DigitsConfig.from_json(config.to_json())
    assert restored == config
    assert restored.to_json() == config.to_json()
    assert restored.hash == config.hash
    assert repr(restored.lr) == repr(config.lr)


def test_json_round_trip_keeps_negative_zero_distinct():
    restored = DigitsConfig.from_json(DigitsConfig(lr=-0.0).to_json())
    assert math.copysign(1.0, restored.lr) == -1.0


def test_from_json_refuses_non_json():
    with pytest.raises(ConfigError, match="not JSON"):
        DigitsConfig.from_json("{batch_size: 3")


def test_diff_and_repr_show_non_default_fields_only():
    config = DigitsConfig(batch_size=32, comment="smaller")
    assert config.diff() == {"comment": "smaller", "batch_size": 32}
    assert repr(config) == "DigitsConfig(comment='smaller', batch_size=32)"
    assert repr(DigitsConfig()) == "DigitsConfig()"


def test_equality():
    assert DigitsConfig(batch_size=3) == DigitsConfig(batch_size=3)
    assert DigitsConfig(batch_size=3) != DigitsConfig(batch_size=4)
    assert DigitsConfig(lr=math.nan) == DigitsConfig(lr=math.nan)
    assert DigitsConfig(comment="a") != DigitsConfig(comment="b")


def test_required_fields_must_be_given():
    class NeedsPath(DatasetConfig):
        fn = "pkg.data.load"
        path: str

    with pytest.raises(ConfigError, match=r"needs a value for \['path'\]"):
        NeedsPath()
    assert NeedsPath(path="x").path == "x"


def test_subclass_can_override_a_default_without_annotation():
    class Bigger(DigitsConfig):
        batch_size = 256

    assert Bigger().batch_size == 256
    assert Bigger().hash == DigitsConfig(batch_size=256).hash


def test_class_variables_and_methods_are_not_fields():
    class WithExtras(DigitsConfig):
        registry: typing.ClassVar[dict] = {}

        def describe(self):
            return f"{self.batch_size} per batch"

    config = WithExtras()
    assert "registry" not in config.to_dict()
    assert config.describe() == "64 per batch"
    with pytest.raises(ConfigError, match="no field 'registry'"):
        WithExtras(registry={})


def test_config_without_fn_cannot_be_built():
    class NoFn(DatasetConfig):
        size: int = 1

    with pytest.raises(ConfigError, match="set the class attribute fn"):
        NoFn()


def test_bad_class_definitions_are_refused():
    with pytest.raises(ConfigError, match="default of Bad.size"):

        class Bad(DatasetConfig):
            fn = "pkg.data.load"
            size: int = "large"

    with pytest.raises(ConfigError, match="has no annotation"):

        class Unannotated(DatasetConfig):
            fn = "pkg.data.load"
            size = 3

    with pytest.raises(ConfigError, match="'hash'.*Config attribute"):

        class Reserved(DatasetConfig):
            fn = "pkg.data.load"
            hash: str = "x"

    with pytest.raises(ConfigError, match="descriptive_fields"):

        class WrongDescriptive(DatasetConfig):
            fn = "pkg.data.load"
            descriptive_fields = ("note",)


def test_extra_keywords_when_allowed_are_hashed_and_round_trip():
    class Open(DatasetConfig):
        fn = "pkg.data.load"
        extra_allowed = True
        size: int = 1

    config = Open(size=2, scale=(1, 2))
    assert config.scale == [1, 2]
    assert config.to_dict() == {"size": 2, "scale": [1, 2]}
    assert config.hash != Open(size=2).hash
    assert Open.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="Open.blob"):
        Open(blob=np.zeros(2))


def test_base_config_cannot_be_instantiated():
    from nntransfer.configs import Config

    with pytest.raises(ConfigError, match="no kind"):
        Config()


def test_copy_and_pickle_keep_the_config():
    import copy
    import pickle

    config = DigitsConfig(batch_size=3, options={"a": [1]}, comment="c")
    assert copy.deepcopy(config) == config
    assert pickle.loads(pickle.dumps(config)) == config


def test_a_declared_class_whose_key_would_select_no_row_is_refused_before_insert():
    """The table stores configs completed with the function's defaults."""

    class Digits(DatasetConfig):
        fn = "nntransfer.datasets.digits.digits_dataset_fn"
        batch_size: int = 64

    with pytest.raises(ConfigError, match=r"does not hash the parameters \[.*'validation_fraction'"):
        Digits(batch_size=32).check_matches_function()


def test_a_declared_table_option_that_the_table_would_leave_out_is_named():
    class Mlp(ModelConfig):
        fn = "nntransfer.models.mlp.mlp_model_fn"
        hidden_sizes: list = [16]
        transfer: dict | None = None

    with pytest.raises(ConfigError, match=r"hashes \['transfer'\], which the table leaves out"):
        Mlp().check_matches_function()
