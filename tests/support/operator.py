"""Running the operator as a process in tests, and small helpers over FineTuneJobs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

from kubetune.local_run import free_port
from tests.support.factories import EXAMPLES, example_docs, set_path
from tests.support.kube import Kube, eventually

FAIL = "pod-container-running-failed.stage.kwok.x-k8s.io"
COMPLETE_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"


class Operator:
    def __init__(self, kubeconfig: str, log_path: str, args: list[str] | None = None) -> None:
        """`args` replace `--standalone` (e.g. peering flags for a replica)."""
        self.health = free_port()
        self.metrics_port = free_port()
        self.log_path = log_path
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        self.log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubetune.runtime",
                *(["--standalone"] if args is None else args),
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(self.health),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        eventually(self.healthy, timeout=60, what="the operator's health endpoint")

    def output(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def healthy(self) -> bool:
        assert self.proc.poll() is None, "the operator exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metric(self, name: str) -> float:
        """A Prometheus metric of the operator, summed over its labels (0 before its first)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
        return sum(float(v) for v in found)

    def metric_by(self, name: str, *labels: str) -> dict[str, float]:
        """A Prometheus metric of the operator, summed by the values of `labels` (joined by a
        space: `create PyTorchJob` for verb and kind)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        by: dict[str, float] = {}
        for found, value in re.findall(rf"^{name}{{([^}}]*)}} ([0-9.e+]+)$", text, re.M):
            tags = dict(re.findall(r'(\w+)="([^"]*)"', found))
            key = " ".join(tags.get(label, "") for label in labels)
            by[key] = by.get(key, 0) + float(value)
        return by

    def stop(self, kill: bool = False) -> None:
        (self.proc.kill if kill else self.proc.terminate)()
        self.proc.wait(timeout=30)
        self.log.close()


def quiet_restart(
    kubeconfig: str, log_path: str, jobs: int, args: list[str] | None = None
) -> float:
    """Start an operator over `jobs` settled jobs: the seconds until it has reconciled every
    one, asserting it wrote nothing meanwhile."""
    quiet = Operator(kubeconfig, log_path, args)
    started = time.monotonic()
    try:
        eventually(
            lambda: quiet.metric("kubetune_finetunejobs") >= jobs,
            timeout=120,
            what="the restarted operator to reconcile every job",
        )
        indexed = time.monotonic() - started
        assert quiet.metric("kubetune_api_writes_total") == 0, quiet.output()[-3000:]
    finally:
        quiet.stop()
    return indexed


def tiny(name: str, **paths: Any) -> dict[str, Any]:
    """tiny.yaml's job with a fresh name; kwok plays the pods."""
    doc = example_docs(next(p for p in EXAMPLES if p.name == "tiny.yaml"))[0]
    doc["metadata"] = {"name": name}
    for dotted, value in paths.items():
        set_path(doc, dotted, value)
    return doc


def set_suspend(kube: Kube, name: str, suspend: bool) -> None:
    body = json.dumps({"spec": {"runPolicy": {"suspend": suspend}}})
    kube.run("patch", "finetunejob", name, "--type=merge", "-p", body)


def status(kube: Kube, name: str) -> dict[str, Any]:
    return dict(kube.get("finetunejob", name).get("status") or {})


def phase_is(kube: Kube, name: str, phase: str) -> dict[str, Any] | None:
    current = status(kube, name)
    return current if current.get("phase") == phase else None
