import json
import logging

import pytest
import torch
from torch import nn

from nntransfer.errors import ConfigError, TransferError
from nntransfer.transfer.loading import LoadReport, load_partial


def make_net(num_classes=4, backbone="features"):
    torch.manual_seed(0)
    net = nn.Module()
    setattr(net, backbone, nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)))
    net.classifier = nn.Linear(5, num_classes)
    return net


def fresh(num_classes=4, backbone="features"):
    torch.manual_seed(1)
    net = nn.Module()
    setattr(net, backbone, nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)))
    net.classifier = nn.Linear(5, num_classes)
    return net


def test_exact_match_loads_everything():
    old, new = make_net(), fresh()
    report = load_partial(new, old.state_dict())
    assert sorted(report.loaded) == sorted(old.state_dict())
    assert not report.missing and not report.unexpected and not report.shape_mismatched
    for name, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[name], value)


def test_new_head_is_reported_and_keeps_fresh_values(caplog):
    old, new = make_net(4), fresh(10)
    head_before = new.classifier.weight.clone()
    with caplog.at_level(logging.WARNING, logger="nntransfer.transfer.loading"):
        report = load_partial(new, old.state_dict())
    assert report.shape_mismatched == {
        "classifier.weight": ((4, 5), (10, 5)),
        "classifier.bias": ((4,), (10,)),
    }
    assert torch.equal(new.classifier.weight, head_before)
    assert torch.equal(new.features[0].weight, old.features[0].weight)
    assert "Skipping parameter classifier.weight" in caplog.text


def test_unexpected_and_missing():
    old = make_net()
    state = dict(old.state_dict())
    state["dense.weight"] = torch.zeros(3, 3)
    del state["classifier.bias"]
    new = fresh()
    report = load_partial(new, state)
    assert report.unexpected == ["dense.weight"]
    assert report.missing == ["classifier.bias"]


def test_rename_prefix_at_module_boundary():
    old = make_net(backbone="backbone")
    new = fresh(backbone="features")
    report = load_partial(new, old.state_dict(), rename={"backbone": "features"})
    assert report.renamed["backbone.0.weight"] == "features.0.weight"
    assert torch.equal(new.features[0].weight, old.backbone[0].weight)
    assert not report.unexpected


def test_rename_prefix_does_not_match_longer_names():
    state = {"layer10.weight": torch.zeros(2)}
    model = nn.Module()
    model.layer10 = nn.Linear(1, 2, bias=False)
    model.layer10.weight.data = torch.ones(2)
    report = load_partial(model, state, rename={"layer1": "block1"})
    assert report.renamed == {}
    assert report.loaded == ["layer10.weight"]


def test_rename_strips_dataparallel_prefix_and_regex_rename():
    old = make_net()
    state = {f"module.{k}": v for k, v in old.state_dict().items()}
    new = fresh()
    report = load_partial(new, state, rename={"module": ""})
    assert sorted(report.loaded) == sorted(old.state_dict())

    new = fresh()
    state = {k.replace("features.", "enc_"): v for k, v in old.state_dict().items()}
    report = load_partial(new, state, rename={r"re:enc_(\d+)\.(.*)": r"features.\1.\2"})
    assert torch.equal(new.features[1].running_var, old.features[1].running_var)
    assert "features.1.running_var" in report.loaded


def test_rename_collision_is_an_error():
    state = {"a.weight": torch.zeros(1), "b.weight": torch.zeros(1)}
    with pytest.raises(TransferError, match="onto 'c.weight'"):
        load_partial(nn.Linear(1, 1), state, rename={"a": "c", "b": "c"})


def test_exclude_resets_classifier_include_loads_only_backbone():
    old = make_net()
    new = fresh()
    head = new.classifier.weight.clone()
    report = load_partial(new, old.state_dict(), exclude="classifier.*")
    assert sorted(report.excluded) == ["classifier.bias", "classifier.weight"]
    assert torch.equal(new.classifier.weight, head)
    assert report.missing == []

    new = fresh()
    report = load_partial(new, old.state_dict(), include="features")
    assert all(name.startswith("features.") for name in report.loaded)
    assert sorted(report.excluded) == ["classifier.bias", "classifier.weight"]

    new = fresh()
    report = load_partial(new, old.state_dict(), include=r"re:features\.0\..*")
    assert sorted(report.loaded) == ["features.0.bias", "features.0.weight"]


def test_nothing_matched_raises_unless_allowed():
    state = {"other.weight": torch.zeros(3)}
    with pytest.raises(TransferError, match="rename"):
        load_partial(fresh(), state)
    report = load_partial(fresh(), state, strict_nothing_matched=False)
    assert report.loaded == [] and report.unexpected == ["other.weight"]


def test_bad_inputs_give_clear_errors():
    with pytest.raises(TransferError, match="state_dict"):
        load_partial(fresh(), [1, 2])
    with pytest.raises(TransferError, match="nn.Module"):
        load_partial({"a": 1}, {})
    with pytest.raises(ConfigError, match="regular expression"):
        load_partial(fresh(), make_net().state_dict(), exclude="re:(")


def test_report_round_trips_through_json_and_prints():
    old, new = make_net(4), fresh(10)
    report = load_partial(new, old.state_dict(), exclude="features.1", warn=False)
    data = json.loads(json.dumps(report.to_dict()))
    again = LoadReport.from_dict(data)
    assert again == report
    text = str(report)
    assert "2 shape-mismatched" in text
    assert "classifier.weight: state (4, 5) vs model (10, 5)" in text
    with pytest.raises(ConfigError, match="unknown keys"):
        LoadReport.from_dict({"loadd": []})
