"""Models, data and outputs in object storage, for real: the local control plane's S3 server
(SeaweedFS, built from its Go module), filled with the real AWS client (boto3).

1. tiny SFT through the operator reads its model and data from s3:// and writes its outputs to
   s3:// (manifest last), with the credentials from a Secret; a DPO stage on another claim
   starts from it (`fromJob`) by reading its merged model from the bucket, and uploads too;
2. the same job with an identity the server refuses fails in `prepare`, its status naming
   AccessDenied and the object, and the secret's value appears nowhere;
3. `kubetune run` reads and writes the same server through the SDK's default chain, and a run
   whose workspace is lost mid-training (its folder deleted) resumes on a new one from the
   checkpoints it uploaded (`output.uploadCheckpoints`).
4. through the operator, a job whose claim is deleted while it is suspended resumes on a new
   claim from the checkpoint it uploaded on SIGTERM.
(1 and 4 on the local control plane and in kind, whose S3 server runs in the cluster; the
others on the local control plane.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kubetune.render.metadata import JOB_LABEL
from tests.support.chain import TINY, TINY_DATA, Chain, wait_for
from tests.support.factories import EXAMPLES, example_docs
from tests.support.kube import eventually
from tests.support.s3 import LocalS3

STEPS = 20
SFT_DPO = next(p for p in EXAMPLES if p.name == "tiny-sft-dpo.yaml")


def tiny_from_s3(chain: Chain, local_s3: LocalS3, bucket: str, name: str, secret: str) -> Any:
    doc = example_docs(TINY)[0]
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    spec["model"] = {"source": f"s3://{bucket}/models/tiny-llama"}
    spec["dataset"]["sources"][0]["source"] = f"s3://{bucket}/data/tiny-chat.jsonl"
    spec["output"] = {"uri": f"s3://{bucket}/runs/{name}/"}
    spec["s3"] = local_s3.connection(secret)
    spec["storage"] = {"existingClaim": chain.claim(f"{name}-workspace")}
    spec["training"].update({"maxSteps": STEPS, "saveSteps": STEPS})
    return chain.fit(doc)


def filled_bucket(local_s3: LocalS3, tmp_path: Path) -> str:
    from kubetune_trainer.storage.tiny import build_tiny_llama

    bucket = local_s3.bucket()
    model = build_tiny_llama(tmp_path / "tiny-llama")
    local_s3.put_tree(bucket, "models/tiny-llama", model)
    local_s3.client().upload_file(str(TINY_DATA), bucket, "data/tiny-chat.jsonl")
    return bucket


def finished(chain: Chain, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = chain.kube.get("finetunejob", name).get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status: dict[str, Any] = wait_for(done, timeout=600, what=f"{name} to finish")
    return status


def dpo_stage_from_s3(chain: Chain, local_s3: LocalS3, bucket: str, secret: str) -> Any:
    """The DPO stage of examples/tiny-sft-dpo.yaml on its own claim, starting from tiny-s3: its
    merged model is on no volume this stage mounts, only in the bucket."""
    doc = example_docs(SFT_DPO)[1]
    doc["metadata"]["name"] = "tiny-s3-dpo"
    spec = doc["spec"]
    spec["model"] = {"fromJob": {"name": "tiny-s3"}}
    spec["dataset"]["sources"][0]["source"] = f"s3://{bucket}/data/tiny-preference.jsonl"
    spec["output"] = {"uri": f"s3://{bucket}/runs/tiny-s3-dpo/"}
    spec["s3"] = local_s3.connection(secret)
    spec["storage"] = {"existingClaim": chain.claim("tiny-s3-dpo-workspace")}
    spec["training"].update({"maxSteps": 10, "saveSteps": 10})
    return chain.fit(doc)


def test_tiny_sft_then_dpo_through_s3(chain_s3: tuple[Chain, LocalS3], tmp_path: Path) -> None:
    chain, local_s3 = chain_s3
    bucket = filled_bucket(local_s3, tmp_path)
    preference = SFT_DPO.parent / "data" / "tiny-preference.jsonl"
    local_s3.client().upload_file(str(preference), bucket, "data/tiny-preference.jsonl")
    chain.kube.apply(local_s3.secret("s3-creds"))
    sft = tiny_from_s3(chain, local_s3, bucket, "tiny-s3", "s3-creds")
    sft["spec"]["output"]["formats"] = ["adapter", "merged"]
    chain.kube.apply(sft)
    chain.kube.apply(dpo_stage_from_s3(chain, local_s3, bucket, "s3-creds"))
    status = finished(chain, "tiny-s3")
    assert status["phase"] == "Succeeded", f"{json.dumps(status, indent=1)}\n{chain.debug()}"

    outputs = status["outputs"]
    prefix = "runs/tiny-s3/"
    assert outputs["uri"] == f"s3://{bucket}/{prefix}"
    assert outputs["uriManifest"] == f"s3://{bucket}/{prefix}manifest.json"
    listing = local_s3.listing(bucket, prefix)
    for key in ("adapter/adapter_model.safetensors", "manifest.json", "report.html"):
        assert prefix + key in listing, sorted(listing)
    # The upload's progress reached the status, ending done at every byte the server holds
    # under the prefix but the manifest's (uploaded last, after the bytes are counted).
    sent = sum(o["Size"] for k, o in listing.items() if not k.endswith("manifest.json"))
    assert status["progress"]["upload"] == {
        "uri": f"s3://{bucket}/{prefix}",
        "bytes": sent,
        "totalBytes": sent,
        "percent": 100,
        "bytesPerSecond": status["progress"]["upload"]["bytesPerSecond"],
        "done": True,
    }, status["progress"]
    manifest = json.loads(
        local_s3.client().get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read()
    )
    assert manifest["job"] == "tiny-s3" and manifest["metrics"]["globalStep"] == STEPS
    assert manifest["baseModel"]["source"] == f"s3://{bucket}/models/tiny-llama"
    others = [o["LastModified"] for k, o in listing.items() if not k.endswith("manifest.json")]
    assert listing[prefix + "manifest.json"]["LastModified"] >= max(others)

    if chain.node:  # the process node keeps whole logs; kind's pods, their ends
        logs = chain.node.all_logs(chain.kube.namespace)
        assert f"s3://{bucket}/models/tiny-llama: downloading" in logs, logs[-3000:]
        assert "uploaded the outputs" in logs

    dpo = finished(chain, "tiny-s3-dpo")
    assert dpo["phase"] == "Succeeded", f"{json.dumps(dpo, indent=1)}\n{chain.debug()}"
    logs = chain.node.all_logs(chain.kube.namespace) if chain.node else chain.debug()
    merged = f"s3://{bucket}/{prefix}merged/"
    if chain.node:
        assert f"model.fromJob: tiny-s3's merged output from {merged}" in logs, logs[-3000:]
        assert f"{merged}: downloading" in logs, logs[-3000:]
    dpo_manifest = json.loads(
        local_s3.client()
        .get_object(Bucket=bucket, Key="runs/tiny-s3-dpo/manifest.json")["Body"]
        .read()
    )
    assert dpo_manifest["baseModel"]["fromJob"]["name"] == "tiny-s3", dpo_manifest["baseModel"]
    assert dpo_manifest["metrics"]["globalStep"] == 10
    assert not chain.exists("tiny-s3-dpo-workspace", "jobs/tiny-s3"), "read from the bucket only"

    keys = local_s3.keys("admin")
    config_maps = chain.kube.run("get", "configmaps", "-o", "yaml")
    for text in (logs, config_maps, json.dumps(status), json.dumps(dpo)):
        assert keys["secretAccessKey"] not in text and keys["accessKeyId"] not in text


def test_refused_credentials_fail_prepare_naming_access_denied_and_nothing_secret(
    local_chain: Chain, local_s3: LocalS3
) -> None:
    chain = local_chain
    bucket = local_s3.bucket()
    local_s3.client().upload_file(str(TINY_DATA), bucket, "data/tiny-chat.jsonl")
    chain.kube.apply(local_s3.secret("s3-denied", identity="denied"))
    doc = tiny_from_s3(chain, local_s3, bucket, "denied", "s3-denied")
    chain.kube.apply(doc)
    status = finished(chain, "denied")
    assert status["phase"] == "Failed", json.dumps(status, indent=1)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PrepareFailed", failed
    message = failed["message"]
    assert "AccessDenied" in message and f"s3://{bucket}/models/tiny-llama" in message, message
    assert "model.source" in message, message
    assert "progress" not in status or not status["progress"].get("step"), "no training step ran"

    secret = local_s3.keys("denied")
    events = chain.kube.run("get", "events", "-o", "yaml")
    config_maps = chain.kube.run("get", "configmaps", "-o", "yaml")
    logs = chain.node.all_logs(chain.kube.namespace) if chain.node else chain.debug()
    for where, text in {
        "status": json.dumps(status),
        "events": events,
        "configmaps": config_maps,
        "logs": logs,
    }.items():
        assert secret["secretAccessKey"] not in text, f"the secret key is in the {where}"


def test_a_run_whose_volume_is_lost_resumes_from_its_s3_checkpoints(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    """`kubetune run` on this machine, data from s3:// and outputs to s3://, credentials from the
    SDK's default chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), no Secret. Checkpoints every
    2 steps go to the bucket (the newest one kept, as on the volume); the run is SIGKILLed while
    held at step 5 and its workspace deleted; a run on a new, empty workspace restores
    checkpoint-4 from the bucket and ends at step 6: one step redone."""
    bucket = local_s3.bucket()
    local_s3.client().upload_file(str(TINY_DATA), bucket, "data/tiny-chat.jsonl")
    doc = example_docs(TINY)[0]
    doc["metadata"]["name"] = "lost-volume"
    spec = doc["spec"]
    spec["dataset"]["sources"][0]["source"] = f"s3://{bucket}/data/tiny-chat.jsonl"
    spec["output"] = {"uri": f"s3://{bucket}/runs/lost/", "uploadCheckpoints": True}
    spec["s3"] = local_s3.connection()
    spec["training"].update({"maxSteps": 6, "saveSteps": 2, "saveTotalLimit": 1})
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(doc))
    keys = local_s3.keys("admin")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": keys["accessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["secretAccessKey"],
        "OMP_NUM_THREADS": "1",
    }
    kubetune = shutil.which("kubetune") or str(Path(sys.executable).with_name("kubetune"))
    first = tmp_path / "first"
    marker = "runs/lost/checkpoints/checkpoint-4/kubetune-complete.json"
    proc = subprocess.Popen(
        [kubetune, "run", str(job_file), "--output", str(first)],
        env={**env, "FAULT_TEST_PAUSE_AT_STEP": "5"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        eventually(
            lambda: (
                proc.poll() is not None
                or (
                    list(first.rglob("paused-at-step-5"))
                    and marker in (listed := local_s3.listing(bucket, "runs/lost/checkpoints/"))
                    and not [k for k in listed if "checkpoint-2/" in k]  # rotated out
                )
            ),
            timeout=300,
            what="the run held at step 5, checkpoint-4 uploaded, checkpoint-2 deleted",
        )
        assert proc.poll() is None, "the first run ended before step 5"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    listing = local_s3.listing(bucket, "runs/lost/checkpoints/")
    complete = sorted(k for k in listing if k.endswith("/kubetune-complete.json"))
    assert complete == [marker], sorted(listing)
    shutil.rmtree(first)  # the volume is lost

    second = tmp_path / "second"
    done = subprocess.run(
        [kubetune, "run", str(job_file), "--output", str(second)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = "\n".join(p.read_text() for p in sorted(second.rglob("logs/*.log")))
    assert done.returncode == 0, done.stdout[-2000:] + logs[-3000:]
    assert f"restoring checkpoint-4 from s3://{bucket}/runs/lost/checkpoints/" in logs, logs
    resumes = json.loads(next(second.rglob("resumes.json")).read_text())
    assert [r["fromStep"] for r in resumes] == [4], resumes
    manifest = json.loads(
        local_s3.client().get_object(Bucket=bucket, Key="runs/lost/manifest.json")["Body"].read()
    )
    assert manifest["metrics"]["globalStep"] == 6, manifest["metrics"]
    assert "runs/lost/adapter/adapter_model.safetensors" in local_s3.listing(bucket, "runs/lost/")
    listing = local_s3.listing(bucket, "runs/lost/checkpoints/")
    assert {k.split("/")[3] for k in listing} == {"checkpoint-6"}, sorted(listing)
    assert "runs/lost/checkpoints/checkpoint-6/kubetune-complete.json" in listing
    assert keys["secretAccessKey"] not in logs + done.stdout


def test_a_job_whose_claim_was_deleted_resumes_from_its_s3_checkpoints_on_a_new_one(
    chain_s3: tuple[Chain, LocalS3], tmp_path: Path
) -> None:
    """Through the operator: a job held at step 5 (checkpoint-4 uploaded) is suspended; it saves
    on SIGTERM and uploads that checkpoint before it exits. Its claim is then deleted and made
    again, binding another, empty volume; resumed, the job restores the SIGTERM checkpoint from
    the bucket (its model and data from S3 again) and ends at step 8, no step redone."""
    from kubetune_trainer.training.callbacks import PauseAtStep
    from tests.support.operator import set_suspend

    chain, s3 = chain_s3
    name = "lost-claim"
    bucket = filled_bucket(s3, tmp_path)
    chain.kube.apply(s3.secret("s3-ckpt"))
    doc = tiny_from_s3(chain, s3, bucket, name, "s3-ckpt")
    spec = doc["spec"]
    spec["output"]["uploadCheckpoints"] = True
    spec["training"].update({"maxSteps": 8, "saveSteps": 2, "saveTotalLimit": 1})
    spec["env"] = [{"name": PauseAtStep.VARIABLE, "value": "5"}]
    spec["terminationGracePeriodSeconds"] = 60
    claim = spec["storage"]["existingClaim"]
    chain.kube.apply(doc)
    checkpoints = f"runs/{name}/checkpoints/"
    held = f"jobs/{name}/paused-at-step-5"
    eventually(
        lambda: (
            (
                f"{checkpoints}checkpoint-4/kubetune-complete.json"
                in s3.listing(bucket, checkpoints)
                and chain.exists(claim, held)
            )
            or finished_now(chain, name)
        ),
        timeout=600,
        what="the run held at step 5 with checkpoint-4 uploaded",
    )
    old_volume = chain.volume(claim)
    set_suspend(chain.kube, name, True)
    eventually(
        lambda: (chain.kube.get("pod", f"{name}-master-0").get("metadata") or {}).get(
            "deletionTimestamp"
        ),
        timeout=60,
        what="the suspended job's pod to be deleted (SIGTERM)",
    )
    chain.remove(claim, held)  # the held step ends; the SIGTERM makes it save, upload and stop
    eventually(
        lambda: not chain.kube.get("pods", selector=f"{JOB_LABEL}={name}"),
        timeout=120,
        what="the pod to exit",
    )
    listing = s3.listing(bucket, checkpoints)
    saved = [k for k in listing if k.endswith("/kubetune-complete.json")]
    assert len(saved) == 1 and "checkpoint-4/" not in saved[0], sorted(listing)
    step = int(saved[0].split("checkpoint-")[1].split("/")[0])

    chain.release(claim)
    chain.kube.run("delete", "pvc", claim, "--timeout=120s")
    chain.claim(claim)  # the same name, another volume: the old one is Released, not reused
    assert not chain.exists(claim, "jobs")  # (in kind this binds it: a pod mounts it)
    assert chain.volume(claim) != old_volume
    chain.release(claim)
    set_suspend(chain.kube, name, False)
    status = finished(chain, name)
    assert status["phase"] == "Succeeded", f"{json.dumps(status, indent=1)}\n{chain.debug()}"

    logs = (
        chain.node.all_logs(chain.kube.namespace)
        if chain.node
        else chain.logs(f"{name}-master-0", "pytorch")
    )
    assert f"restoring checkpoint-{step} from s3://{bucket}/{checkpoints}" in logs, logs[-3000:]
    manifest = json.loads(chain.read(claim, f"jobs/{name}/output/manifest.json") or "{}")
    assert manifest["metrics"]["globalStep"] == 8, manifest
    (resume,) = manifest["resumes"]
    assert resume["fromStep"] == step and resume["stepsRedone"] == 0, resume
    listing = s3.listing(bucket, checkpoints)
    assert [k for k in listing if k.endswith("/kubetune-complete.json")] == [
        f"{checkpoints}checkpoint-8/kubetune-complete.json"
    ], sorted(listing)


def finished_now(chain: Chain, name: str) -> bool:
    """Fail at once when the job ended before the test's fault."""
    phase = (chain.kube.get("finetunejob", name).get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise AssertionError(f"{name} ended {phase} early\n{chain.debug()}")
    return False
