"""`kubetune api --files-s3`: uploaded files kept in a bucket of the local control plane's S3
server (SeaweedFS), driven by OpenAI's own `openai` client with service-account tokens the real
API server reviews."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.support.kube import Kube
from tests.support.openai_api import ApiServer, chat_line, grant, jsonl
from tests.support.s3 import LocalS3


def test_files_kept_in_a_bucket_reach_finetunejobs_as_s3_sources(
    ftj_crd: Kube, kube: Kube, local_s3: LocalS3, tmp_path: Path
) -> None:
    """`kubetune api --files-s3`: the openai client's uploads land in the bucket (meta.json
    last), are listed, read back and deleted there, and a job created from one reads it as an
    s3:// source with the bucket's connection and the configured Secret, never a key."""
    bucket = local_s3.bucket()
    keys = local_s3.keys("admin")
    server = ApiServer(
        kube.kubeconfig,
        tmp_path / "unused",
        tmp_path / "api.log",
        *("--files-s3", f"s3://{bucket}/files", "--files-s3-endpoint", local_s3.endpoint),
        *("--files-s3-region", "us-east-1", "--files-s3-path-style"),
        *("--files-s3-secret", "s3-files"),
        env={
            "AWS_ACCESS_KEY_ID": keys["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["secretAccessKey"],
        },
    )
    try:
        verbs = ["get", "list", "create", "delete"]
        client = OpenAI(base_url=server.url, api_key=grant(kube, "trainer", verbs), max_retries=0)
        data = jsonl(chat_line(), chat_line("What is 2 plus 6?", "2 plus 6 is 8."))
        uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
        folder = f"files/{kube.namespace}/{uploaded.id}/"
        listing = local_s3.listing(bucket, folder)
        assert set(listing) == {folder + n for n in ("upload.jsonl", "training.jsonl", "meta.json")}
        assert listing[folder + "meta.json"]["LastModified"] >= max(
            o["LastModified"] for o in listing.values()
        )
        assert client.files.content(uploaded.id).read() == data
        assert client.files.retrieve(uploaded.id).bytes == len(data)
        assert uploaded.id in [f.id for f in client.files.list()]

        job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=uploaded.id)
        source = kube.get("finetunejob", job.id)["spec"]["dataset"]["sources"][0]
        assert source["source"] == f"s3://{bucket}/{folder}training.jsonl"
        assert source["s3"] == {
            "endpoint": local_s3.endpoint,
            "region": "us-east-1",
            "pathStyle": True,
            "credentials": {
                "name": "s3-files",
                "accessKeyIdKey": "AWS_ACCESS_KEY_ID",
                "secretAccessKeyKey": "AWS_SECRET_ACCESS_KEY",
            },
        }
        text = json.dumps(kube.get("finetunejob", job.id)) + server.output()
        assert keys["secretAccessKey"] not in text and keys["accessKeyId"] not in text

        assert client.files.delete(uploaded.id).deleted
        assert not local_s3.listing(bucket, folder)
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(uploaded.id)
    finally:
        server.stop()
