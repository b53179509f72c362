"""Helpers for tests that train for real: a FineTuneJob on the tiny model, run like
`kubetune run` runs it (prepare, then torchrun per node with the PET_* variables)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console

from kubetune.api import FineTuneJob, parse_job
from kubetune.local_run import RunResult, free_port, local_env, run_job
from kubetune.render.layout import Layout
from kubetune.render.pod import CONFIG_FILE, training_command
from kubetune.render.settings import RenderSettings
from kubetune.render.trainer_config import trainer_config
from kubetune_api.config import TrainerConfig
from tests.support.factories import REPO, make_job

TINY_DATA = REPO / "examples" / "data" / "tiny-chat.jsonl"


def tiny_job(model_dir: Path, name: str = "t", **paths: Any) -> FineTuneJob:
    doc = make_job(
        **{
            "metadata": {"name": name},
            "spec.model": {"source": str(model_dir)},
            "spec.dataset": {
                "sources": [{"source": str(TINY_DATA)}],
                "chatTemplate": {"builtin": "chatml"},
            },
            "spec.method": {"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.0}},
            "spec.training": {
                "maxSteps": 30,
                "learningRate": 1e-2,
                "microBatchSize": 8,
                "maxLength": 128,
                "gradientCheckpointing": False,
                "precision": "fp32",
                "saveSteps": 10,
                "loggingSteps": 5,
                "warmupRatio": 0.0,
            },
            **paths,
        }
    )
    return parse_job(doc)


# The first 50 conversations of the tiny set, as records, for tests that write their own files.
RECORDS = [json.loads(line) for line in TINY_DATA.read_text().splitlines()][:50]


def config_for(model: Path, workspace: Path, **paths: Any) -> TrainerConfig:
    """The trainer config the operator would render for the tiny job in `workspace`."""
    job = tiny_job(model, "prep", **paths)
    return trainer_config(job, Layout(PurePosixPath(workspace), relative_base=PurePosixPath(REPO)))


def train(job: FineTuneJob, workspace: Path) -> RunResult:
    return run_job(job, workspace, REPO, Console(file=open(os.devnull, "w")))


def job_dir(workspace: Path, job: FineTuneJob) -> Path:
    return workspace / "jobs" / job.name


def logged_losses(workspace: Path, job: FineTuneJob) -> list[float]:
    text = "".join(
        p.read_text() for p in sorted((job_dir(workspace, job) / "logs").glob("node-*.log"))
    )
    return [
        float(line.split(" loss ")[1].split()[0])
        for line in text.splitlines()
        if " kubetune step " in line and " loss " in line
    ]


def manifest(workspace: Path, job: FineTuneJob) -> dict[str, Any]:
    return dict(json.loads((job_dir(workspace, job) / "output" / "manifest.json").read_text()))


class Launched:
    """One node of a job started by hand (for kill and signal tests)."""

    def __init__(self, job: FineTuneJob, workspace: Path) -> None:
        layout = Layout(PurePosixPath(workspace), relative_base=PurePosixPath(REPO))
        config = trainer_config(job, layout)
        self.dir = Path(config.paths.job)
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / CONFIG_FILE
        self.config_path.write_text(config.dump())
        self.env = local_env(job, layout, self.config_path)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kubetune_trainer",
                "prepare",
                "--config",
                str(self.config_path),
            ],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.command = training_command(job, RenderSettings(config_mount=str(self.dir)))
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        env = {
            **self.env,
            "PET_NNODES": "1",
            "PET_NODE_RANK": "0",
            "PET_NPROC_PER_NODE": "1",
            "PET_MASTER_ADDR": "127.0.0.1",
            "PET_MASTER_PORT": str(free_port()),
        }
        log = (self.dir / "logs" / f"run-{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            self.command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return (self.dir / "logs" / f"run-{self.runs}.log").read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} in the log:\n{self.log()[-3000:]}")

    def kill_all(self) -> None:
        """SIGKILL torchrun and every process below it, as the kubelet kills a container.

        (torchrun starts its workers in sessions of their own, so a process-group kill
        would leave them running.)"""
        assert self.proc is not None
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM to torchrun only, as Kubernetes signals a container's PID 1."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 300) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found
