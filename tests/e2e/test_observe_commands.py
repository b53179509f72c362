"""`kubetune watch`, `status` and `logs` against a cluster, through a kubeconfig, while a
two-node job trains and after it ends.

`watch -o json` streams the FineTuneJob from the API server (a watch from its
resourceVersion): the test reads its documents as they come — the signal that training has
started — runs `status -o json` then, and expects `watch` to exit 0 with the job's success.
Pod logs come through the API server's pods/log, which a kubelet serves: the process node has
none (its pods are local processes), so the rank-prefixed logs are checked in kind, where a real
kubelet serves them; on the process node the same command must fail saying so, not hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from tests.support.chain import Chain
from tests.support.factories import EXAMPLES, example_docs

TINY = next(p for p in EXAMPLES if p.name == "tiny.yaml")
NAME, STEPS = "observed", 30
KUBETUNE = str(Path(sys.executable).parent / "kubetune")


def documents(stream: IO[str]) -> Any:
    """JSON documents, one after another, as `-o json` prints them (indented, no separator)."""
    decoder, buffer = json.JSONDecoder(), ""
    for line in stream:
        buffer += line
        try:
            doc, end = decoder.raw_decode(buffer.lstrip())
        except json.JSONDecodeError:
            continue
        buffer = buffer.lstrip()[end:]
        yield doc


def kubetune(chain: Chain, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": chain.kube.kubeconfig}
    return subprocess.run(
        [KUBETUNE, *args, "-n", chain.kube.namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_watch_status_and_logs_follow_a_training_job(chain: Chain) -> None:
    claim = chain.claim("observed-workspace")
    chain.put(
        claim, "data/tiny-chat.jsonl", (TINY.parent / "data" / "tiny-chat.jsonl").read_bytes()
    )
    doc = example_docs(TINY)[0]
    doc["metadata"]["name"] = NAME
    doc["spec"]["distributed"]["nodes"] = 2
    doc["spec"]["storage"] = {"existingClaim": claim}
    doc["spec"]["training"].update({"maxSteps": STEPS, "saveSteps": 10, "loggingSteps": 5})
    chain.kube.apply(chain.fit(doc))

    watch = subprocess.Popen(
        [KUBETUNE, "watch", NAME, "-n", chain.kube.namespace, "-o", "json"],
        env={**os.environ, "KUBECONFIG": chain.kube.kubeconfig, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    seen: list[dict[str, Any]] = []
    during: dict[str, Any] | None = None
    for job in documents(watch.stdout):
        seen.append(job)
        status = job.get("status") or {}
        if during is None and status.get("phase") == "Training" and status.get("metrics"):
            now = kubetune(chain, "status", NAME, "-o", "json")
            assert now.returncode == 0, now.stderr
            during = json.loads(now.stdout)
    code = watch.wait(timeout=900)
    phases = [(j.get("status") or {}).get("phase") for j in seen]
    assert code == 0, f"watch exited {code}; phases {phases}\n{chain.debug()}"
    assert phases[-1] == "Succeeded" and "Training" in phases, phases
    versions = [int(j["metadata"]["resourceVersion"]) for j in seen]
    assert versions == sorted(set(versions)), "each change once, in order"

    # While training: the object as the API server has it, with the trainer's history.
    assert during is not None, f"never saw Training with metrics: {phases}"
    assert (during["kind"], during["metadata"]["name"]) == ("FineTuneJob", NAME)
    assert "managedFields" not in during["metadata"]
    points = during["status"]["metrics"]["points"]
    assert points and all(0 < p["step"] <= STEPS for p in points) and "loss" in points[0]

    # After: the whole history's last step, and where report.html and metrics.jsonl are.
    after = json.loads(kubetune(chain, "status", NAME, "-o", "json").stdout)["status"]
    assert after["metrics"]["points"][-1]["step"] == STEPS
    report = after["outputs"]["report"]
    assert report == f"/workspace/jobs/{NAME}/output/report.html"
    assert chain.exists(claim, f"jobs/{NAME}/output/report.html")
    assert chain.exists(claim, f"jobs/{NAME}/output/metrics.jsonl")
    screen = kubetune(chain, "status", NAME)
    assert screen.returncode == 0 and f"{STEPS}/{STEPS} (100%)" in screen.stdout

    logs = kubetune(chain, "logs", NAME, "--rank", "1", "--container", "pytorch", "-f")
    if chain.node is not None:  # the process node serves no pods/log: a clear error, no hang
        assert logs.returncode == 2 and f"pod {NAME}-worker-0 container pytorch" in logs.stderr
        return
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.rstrip("\n").split("\n")  # the lines kubetune writes (\n-ended)
    assert lines and all(line.startswith("[rank 1] ") for line in lines), [
        line for line in lines if not line.startswith("[rank 1] ")
    ][:5]
    assert any("world size 2" in line for line in lines)
    every = kubetune(chain, "logs", NAME).stdout.rstrip("\n").split("\n")
    assert {line.split("]")[0] + "]" for line in every} == {
        "[rank 0 prepare]",
        "[rank 1 prepare]",
        "[rank 0]",
        "[rank 1]",
    }
