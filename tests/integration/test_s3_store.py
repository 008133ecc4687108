"""Artifacts in an S3 store (a local S3 server), as a cluster deployment with MinIO would keep them."""

from __future__ import annotations

import socket

import boto3
import pytest
import torch
from moto.server import ThreadedMotoServer

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"


@pytest.fixture
def s3_store(monkeypatch):
    """A DataJoint store named ``nnt_s3`` on a local S3 server; artifacts go there while the test runs."""
    from nntransfer.db import import_datajoint

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    credentials = {"aws_access_key_id": "nntransfer", "aws_secret_access_key": "secret", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **credentials)
    client.create_bucket(Bucket="experiments")
    dj = import_datajoint()
    dj.config["stores"] = {
        "nnt_s3": {"protocol": "s3", "endpoint": f"127.0.0.1:{port}", "bucket": "experiments", "location": "nnt",
                   "access_key": "nntransfer", "secret_key": "secret", "secure": False}
    }
    monkeypatch.setenv("NNTRANSFER_STORE", "nnt_s3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield client
    server.stop()


def test_trained_model_artifacts_live_in_the_s3_store(db, s3_store, store_dir):
    db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": 64})
    db.Model().add_entry(model_fn=MLP, model_config={"hidden_sizes": [8]})
    db.Trainer().add_entry(trainer_fn="itest_functions.data_trainer", trainer_config={})
    db.Seed().insert1({"seed": 4})
    assert db.TrainedModel.populate(reserve_jobs=True)["success_count"] == 1

    storage = db.TrainedModel.ModelStorage().fetch1()
    objects = {item["Key"] for item in s3_store.list_objects_v2(Bucket="experiments")["Contents"]}
    assert f"nnt/{storage['model_state']}" in objects
    assert any(key.rsplit("/", 1)[-1].startswith("transfer_data-") and key.endswith(".npz") for key in objects)
    assert not (store_dir / storage["model_state"]).exists()  # nothing went to the local folder

    _, model = db.TrainedModel().load_model()
    stored = db.TrainedModel().fetch_state_dict()
    assert all(torch.equal(tensor, stored[name]) for name, tensor in model.state_dict().items())
    assert db.TrainedModel().fetch_transfer_data()["train"]["logits"].shape[1] == 2
