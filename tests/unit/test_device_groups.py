"""``--devices``: GPU numbers as this process sees them, shared out among the worker processes."""

import pytest

from nntransfer.device_groups import parse_devices, share_devices
from nntransfer.errors import ConfigError


def test_numbers_count_the_gpus_a_scheduler_left_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert parse_devices("1,3") == ["5", "7"]
    assert parse_devices("auto") == ["4", "5", "6", "7"]
    with pytest.raises(ConfigError, match=r"sees 4: 0..3"):
        parse_devices("0,4")


@pytest.mark.parametrize("text, fragment", [("0,0", "each GPU once"), ("-1", "number >= 0"), ("gpu0", "'auto' or GPU numbers")])
def test_bad_lists_are_refused(monkeypatch, text, fragment):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError, match=fragment):
        parse_devices(text)


def test_without_a_visible_gpu_auto_is_refused_and_numbers_go_through(monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="finds no GPU"):
        parse_devices("auto")
    assert parse_devices("0,1") == ["0", "1"]
    assert "train on the CPU" in caplog.text


def test_gpus_are_shared_in_equal_contiguous_groups():
    devices = ["0", "1", "2", "3"]
    assert share_devices(devices, 4) == ["0", "1", "2", "3"]
    assert share_devices(devices, 2) == ["0,1", "2,3"]
    assert share_devices(devices, 1) == ["0,1,2,3"]
    with pytest.raises(ConfigError, match="cannot be shared equally among --jobs 3"):
        share_devices(devices, 3)
