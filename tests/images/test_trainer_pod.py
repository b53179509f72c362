"""The trainer image run as the rendered pod runs it: `kubetune render examples/tiny.yaml`
gives the ConfigMap's trainer.yaml and the Master's two containers (prepare, then torchrun);
each runs in the image as uid 1000, with the workspace bind-mounted at the claim's mount path,
the trainer config where the ConfigMap is mounted, the container's env, and the PET_*
variables the training-operator sets for a single-node Master. The adapter and the run
manifest must land on the volume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.factories import REPO
from tests.support.images import BUILD_TIMEOUT_S, docker_run

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)
TINY = REPO / "examples" / "tiny.yaml"
POD = "tiny-master-0"  # the Master pod's name, which is also its hostname and service


def rendered(path: Path) -> dict[str, dict[str, Any]]:
    """The rendered objects by kind."""
    kubetune = Path(sys.executable).with_name("kubetune")
    out = subprocess.run(
        [str(kubetune), "render", str(path), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {item["kind"]: item for item in json.loads(out)["items"]}


def container_args(container: dict[str, Any], volumes: dict[str, Path]) -> list[str]:
    """docker run flags for a rendered container: its mounts (by volume name) and env (plain
    values, and the downward-API fields the kubelet fills in)."""
    args: list[str] = []
    for mount in container["volumeMounts"]:
        if mount["name"] in volumes:
            ro = ",readonly" if mount.get("readOnly") else ""
            args += [
                "--mount",
                f"type=bind,src={volumes[mount['name']]},dst={mount['mountPath']}{ro}",
            ]
    fields = {"metadata.namespace": "default", "metadata.name": POD}
    for var in container["env"]:
        value = var.get(
            "value", fields.get(var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", ""))
        )
        assert value is not None, var
        args += ["--env", f"{var['name']}={value}"]
    return args


def test_tiny_trains_in_the_trainer_container(trainer_image: str, tmp_path: Path) -> None:
    objects = rendered(TINY)
    pod = objects["PyTorchJob"]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000
    (prepare,), (pytorch,) = pod["initContainers"], pod["containers"]

    # The claim, with the data the example reads relative to the workspace; uid 1000 owns it
    # as the pod's fsGroup would make it writable.
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    shutil.copy(TINY.parent / "data" / "tiny-chat.jsonl", workspace / "data")
    config = tmp_path / "trainer-config"
    config.mkdir()
    (config / "trainer.yaml").write_text(objects["ConfigMap"]["data"]["trainer.yaml"])
    for path in (workspace, workspace / "data", *workspace.glob("data/*")):
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    volumes = {"workspace": workspace, "trainer-config": config}
    common = ["--hostname", POD, "--shm-size", "1g"]

    started = time.monotonic()
    result = docker_run(
        trainer_image, [*common, *container_args(prepare, volumes)], prepare["command"]
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    port = next(p["containerPort"] for p in pytorch["ports"] if p["name"] == "pytorchjob-port")
    topology = {  # what the training-operator sets in a single-node Master's container
        "MASTER_ADDR": POD,
        "MASTER_PORT": port,
        "WORLD_SIZE": 1,
        "RANK": 0,
        "PET_MASTER_ADDR": POD,
        "PET_MASTER_PORT": port,
        "PET_NNODES": 1,
        "PET_NODE_RANK": 0,
        "PET_NPROC_PER_NODE": objects["PyTorchJob"]["spec"]["nprocPerNode"],
    }
    env = [f"--env={name}={value}" for name, value in topology.items()]
    result = docker_run(
        trainer_image, [*common, *env, *container_args(pytorch, volumes)], pytorch["command"]
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"containerised tiny training (prepare + train): {time.monotonic() - started:.0f} s")

    manifests = list(workspace.glob("jobs/tiny/output/**/manifest.json"))
    assert len(manifests) == 1, sorted(str(p) for p in workspace.rglob("*"))[:50]
    manifest = json.loads(manifests[0].read_text())
    steps = objects["ConfigMap"]["data"]["trainer.yaml"].split("maxSteps: ")[1].split()[0]
    assert manifest["job"] == "tiny" and manifest["metrics"]["globalStep"] == int(steps), manifest
    adapter = manifest["outputs"]["adapter"]
    assert adapter.startswith("/workspace/"), adapter
    on_volume = workspace / adapter.removeprefix("/workspace/")
    assert (on_volume / "adapter_model.safetensors").stat().st_size > 0
    assert all(p.stat().st_uid == 1000 for p in on_volume.iterdir())  # written as uid 1000
    print(f"adapter {adapter}; training loss {manifest['metrics']['trainingLoss']}")
