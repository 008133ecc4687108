"""What a process is told when a stored name lies outside the allowed packages: exactly what to set."""

import pytest

from nntransfer import resolve
from nntransfer.errors import UntrustedFunctionError


def test_one_error_names_every_package_of_an_entry_and_the_setting_that_allows_them(monkeypatch):
    monkeypatch.setenv(resolve.ALLOWED_ENV, "mylab otherlab")
    names = {"dataset_fn": "nbdata.functions.load", "model_fn": "mylab.models.mlp", "trainer_fn": "nbtrain.t.fit"}
    with pytest.raises(UntrustedFunctionError) as refused:
        resolve.check_all_allowed(names)
    message = str(refused.value)
    assert "dataset_fn 'nbdata.functions.load', trainer_fn 'nbtrain.t.fit' are not in an allowed package" in message
    assert "NNTRANSFER_ALLOWED_PACKAGES=nbdata,nbtrain,mylab,otherlab in the environment of every process" in message
    assert "PYTHONPATH" in message and "nntransfer.allow_packages('nbdata', 'nbtrain')" in message
    monkeypatch.setenv(resolve.ALLOWED_ENV, "nbdata,nbtrain,mylab,otherlab")
    resolve.check_all_allowed(names)  # exactly that setting is enough


def test_a_function_defined_in_the_notebook_itself_is_refused_with_where_to_put_it():
    with pytest.raises(UntrustedFunctionError, match="defined in a notebook or script .* no other process can import"):
        resolve.check_allowed("__main__.my_trainer_fn", "trainer_fn")
