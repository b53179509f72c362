"""`kubetune run`: a FineTuneJob on this machine, through the same trainer and torchrun.

The job is resolved with the same `trainer_config` the operator renders into the ConfigMap,
with the workspace in a local folder. Each "node" is a torchrun started with the PET_*
variables the training-operator would inject, running the same command as the pod. Chained
stages in one file run in order and share the workspace, as they would share a claim.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kubetune.api.job import FineTuneJob
from kubetune.render.layout import Layout
from kubetune.render.pod import CONFIG_FILE, render_env, training_command
from kubetune.render.settings import RenderSettings
from kubetune.render.trainer_config import trainer_config
from kubetune.yamlio import dump
from kubetune_api.config import TrainerConfig
from kubetune_trainer.report.run_folder import JOB_FILE, RUN_STATE
from kubetune_trainer.runtime.progress import read_progress


@dataclass
class RunResult:
    job: str
    ok: bool
    seconds: float
    output: Path
    loss: float | None = None
    step: int | None = None
    log: Path | None = None
    evaluation: dict[str, Any] | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_env(job: FineTuneJob, layout: Layout, config_path: Path) -> dict[str, str]:
    """The pod's environment (render_env: NCCL, DeepSpeed, spec.env, …) as literal values,
    plus what a laptop needs. Secret-backed variables come from this shell, if set."""
    settings = RenderSettings(config_mount=str(config_path.parent))
    pod = {e["name"]: e["value"] for e in render_env(job, layout, settings) if "value" in e}
    env = {
        **os.environ,
        **pod,
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // job.spec.world_size)),
        # torchrun and the trainer live beside this interpreter, on PATH or not
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    if job.spec.distributed.gpusPerNode == 0:
        env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def write_config(
    job: FineTuneJob, workspace: Path, base: Path
) -> tuple[TrainerConfig, Path, dict[str, str]]:
    """The trainer config, written into the job's folder of the workspace, and the environment
    its processes run with."""
    layout = Layout(PurePosixPath(workspace), relative_base=PurePosixPath(base))
    config = trainer_config(job, layout)
    job_dir = Path(config.paths.job)
    (job_dir / "logs").mkdir(parents=True, exist_ok=True)
    config_path = job_dir / CONFIG_FILE
    config_path.write_text(config.dump())
    return config, config_path, local_env(job, layout, config_path)


def preview_job(job: FineTuneJob, workspace: Path, base: Path, samples: int) -> int:
    """Show the first `samples` training samples of the job (the trainer's `preview`)."""
    _, config_path, env = write_config(job, workspace, base)
    command = [sys.executable, "-m", "kubetune_trainer", "preview", "--config", str(config_path)]
    return subprocess.run([*command, "--samples", str(samples)], env=env).returncode


def record_phase(job_dir: Path, phase: str, **details: Any) -> None:
    """`run.json`: the local run's phase (and exit code, and the log that says why, when it
    failed), which `kubetune status|watch|logs` read as the cluster's FineTuneJob status."""
    state = {"phase": phase, "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = job_dir / f"{RUN_STATE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({**state, **details}))
    os.replace(tmp, job_dir / RUN_STATE)


def run_job(job: FineTuneJob, workspace: Path, base: Path, console: Console) -> RunResult:
    started = time.monotonic()
    config, config_path, env = write_config(job, workspace, base)
    job_dir = config_path.parent
    logs = job_dir / "logs"
    result = RunResult(job.name, False, 0.0, Path(config.paths.output))
    (job_dir / JOB_FILE).write_text(dump(job.to_wire()))
    record_phase(job_dir, "Preparing")

    console.print(
        f"[bold]{job.name}[/bold]: preparing model and data (log: {logs / 'prepare.log'})"
    )
    with (logs / "prepare.log").open("wb") as out:
        prepare = subprocess.run(
            [sys.executable, "-m", "kubetune_trainer", "prepare", "--config", str(config_path)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if prepare.returncode != 0:
        record_phase(job_dir, "Failed", exitCode=prepare.returncode, log="prepare.log")
        return _failed(result, logs / "prepare.log", started, console)
    record_phase(job_dir, "Training")

    nodes, port = job.spec.distributed.nodes, free_port()
    command = training_command(job, RenderSettings(config_mount=str(job_dir)))
    processes = []
    for rank in range(nodes):
        node_env = {
            **env,
            "PET_NNODES": str(nodes),
            "PET_NODE_RANK": str(rank),
            "PET_NPROC_PER_NODE": str(job.spec.procs_per_node),
            "PET_MASTER_ADDR": "127.0.0.1",
            "PET_MASTER_PORT": str(port),
        }
        log_file = (logs / f"node-{rank}.log").open("wb")
        processes.append(
            (
                subprocess.Popen(command, env=node_env, stdout=log_file, stderr=subprocess.STDOUT),
                log_file,
            )
        )
    console.print(
        f"[bold]{job.name}[/bold]: training on {nodes} node(s) × "
        f"{job.spec.procs_per_node} process(es) (logs: {logs})"
    )
    _watch(job_dir, [p for p, _ in processes], console)
    codes = [p.wait() for p, _ in processes]
    for _, log_file in processes:
        log_file.close()
    final = read_progress(job_dir) or {}
    result.loss, result.step = final.get("loss"), final.get("step")
    result.evaluation = final.get("evaluation")
    if any(codes):
        failing = next(i for i, c in enumerate(codes) if c)
        log_name = f"node-{failing}.log"
        record_phase(job_dir, "Failed", exitCode=codes[failing], log=log_name)
        return _failed(result, logs / log_name, started, console)
    record_phase(job_dir, "Succeeded", exitCode=0)
    result.ok, result.seconds = True, time.monotonic() - started
    return result


def _watch(job_dir: Path, processes: list[subprocess.Popen[bytes]], console: Console) -> None:
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} tok/s"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("steps", total=None, loss="-", rate="-")
        while any(p.poll() is None for p in processes):
            if progress := read_progress(job_dir):
                rate = progress.get("tokensPerSecond")
                bar.update(
                    task,
                    total=progress.get("totalSteps"),
                    completed=progress.get("step", 0),
                    loss=progress.get("loss", "-"),
                    rate=f"{rate:,.0f}" if rate else "-",
                )
            time.sleep(0.5)
        if progress := read_progress(job_dir):
            bar.update(task, completed=progress.get("step", 0), loss=progress.get("loss", "-"))


def _failed(result: RunResult, log: Path, started: float, console: Console) -> RunResult:
    result.seconds, result.log = time.monotonic() - started, log
    tail = log.read_text(errors="replace").splitlines()[-40:]
    console.print(f"[red]{result.job} failed[/red]; the end of {log}:")
    console.print("\n".join(tail), markup=False, highlight=False)
    return result
