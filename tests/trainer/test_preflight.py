"""The network preflight: the arithmetic and the verdicts as tables, and the real thing —
two processes under torchrun over gloo — reporting a bandwidth to progress.json and to the
status body."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.local_run import free_port
from kubetune.render.layout import Layout
from kubetune.render.trainer_config import trainer_config
from kubetune_trainer.runtime.preflight import Measurement, judge, transport
from kubetune_trainer.runtime.progress import FileSink, read_progress
from kubetune_trainer.runtime.reporter import StatusSink
from tests.support.factories import REPO, make_job


def test_bus_bandwidth_is_nccl_tests_busbw() -> None:
    m = Measurement(nbytes=1_000_000_000, seconds=0.5, ranks=16)
    assert m.alg_gbps == pytest.approx(2.0)
    assert m.bus_gbps == pytest.approx(2.0 * 2 * 15 / 16)
    assert Measurement(8, 1.0, 2).bus_gbps == pytest.approx(8 / 1e9)  # n=2: busbw = algbw


# (backend, nodes, env, NCCL log, RDMA devices) → (transport, source)
TRANSPORTS: list[tuple[str, int, dict[str, str], list[str], list[str], tuple[Any, Any]]] = [
    ("gloo", 2, {}, [], [], ("TCP (gloo)", "backend")),
    ("nccl", 1, {}, [], [], ("intra-node", "topology")),
    (
        "nccl",
        2,
        {"NCCL_NET": "IB"},
        ["h:1:1 [0] NCCL INFO Using network Socket"],
        [],
        ("Socket", "ncclLog"),
    ),
    (
        "nccl",
        2,
        {},
        ["h:1:1 [0] NCCL INFO Using network AWS Libfabric"],
        ["/dev/infiniband/uverbs0"],
        ("AWS Libfabric", "ncclLog"),
    ),
    ("nccl", 2, {"NCCL_NET": "IB"}, [], [], ("IB", "environment")),
    (
        "nccl",
        2,
        {"NCCL_IB_DISABLE": "1"},
        [],
        ["/dev/infiniband/uverbs0"],
        ("Socket", "environment"),
    ),
    ("nccl", 2, {}, [], [], ("Socket", "devices")),
    ("nccl", 2, {}, [], ["/dev/infiniband/uverbs0"], (None, None)),
]


@pytest.mark.parametrize(("backend", "nodes", "env", "lines", "devices", "expected"), TRANSPORTS)
def test_transport(
    backend: str,
    nodes: int,
    env: dict[str, str],
    lines: list[str],
    devices: list[str],
    expected: Any,
) -> None:
    assert transport(backend, nodes, env, lines, devices) == expected


# (bus GB/s, transport, fabric, nodes, gpus) → verdict, in words
VERDICTS: list[tuple[float, str | None, str, int, bool, str, str]] = [
    (40.0, "IB", "infiniband", 2, True, "ok", "as infiniband should give"),
    (1.2, "Socket", "infiniband", 2, True, "belowFabric", "NCCL is on TCP sockets"),
    (40.0, "Socket", "roce", 2, True, "belowFabric", "sockets"),  # sockets even when fast
    (2.0, "IB", "infiniband", 2, True, "belowFabric", "far below infiniband"),
    (2.0, None, "efa", 4, True, "belowFabric", "undetected transport"),
    (1.0, "Socket", "auto", 2, True, "unchecked", "fabric auto"),
    (1.0, "Socket", "tcp", 2, True, "unchecked", "fabric tcp"),
    (1.0, "TCP (gloo)", "infiniband", 2, False, "unchecked", "CPU training"),
    (100.0, "intra-node", "infiniband", 1, True, "unchecked", "one node"),
]


@pytest.mark.parametrize(("bus", "net", "fabric", "nodes", "gpus", "verdict", "words"), VERDICTS)
def test_verdict(
    bus: float, net: str | None, fabric: str, nodes: int, gpus: bool, verdict: str, words: str
) -> None:
    got, floor, message = judge(bus, net, fabric, nodes, gpus)
    assert got == verdict and words in message, message
    assert (floor is None) == (verdict == "unchecked")


def test_status_body_carries_the_network_and_no_empty_progress() -> None:
    network = {"busBandwidthGBps": 1.5, "transport": "Socket", "expectedMinGBps": None}
    body = StatusSink.body({"network": network, "updatedAt": "2026-01-01T00:00:00Z"})
    assert body == {"status": {"network": {"busBandwidthGBps": 1.5, "transport": "Socket"}}}


def test_progress_file_keeps_the_network_beside_later_progress(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    sink.report({"network": {"busBandwidthGBps": 1.5}}, force=True)
    sink.report({"step": 10, "loss": 1.0})
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress["network"] == {"busBandwidthGBps": 1.5} and progress["step"] == 10


def test_two_processes_over_gloo_report_a_bandwidth(tmp_path: Path) -> None:
    job = parse_job(make_job(nodes=2, **{"metadata.name": "pf"}))
    config = trainer_config(job, Layout(PurePosixPath(tmp_path)))
    job_dir = Path(config.paths.job)
    job_dir.mkdir(parents=True)
    config_file = job_dir / "trainer.yaml"
    config_file.write_text(config.dump())
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
    rendezvous = [f"--master-port={free_port()}", "--master-addr=127.0.0.1"]
    run = subprocess.run(
        [*torchrun, *rendezvous, str(REPO / "tests/trainer/preflight_ranks.py"), str(config_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **_path_env()},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reports = [json.loads((job_dir / f"report-{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["verdict"] == reports[1]["verdict"] == "unchecked"  # CPU: nothing to judge
    progress = read_progress(job_dir)
    assert progress is not None
    network = progress["network"]
    assert network["busBandwidthGBps"] > 0 and network["algBandwidthGBps"] > 0
    assert network["backend"] == "gloo" and network["transport"] == "TCP (gloo)"
    assert network["ranks"] == 2 and network["messageBytes"] == 32 << 20
    patch = json.loads((job_dir / "status-patch.json").read_text())
    assert patch["status"]["network"]["busBandwidthGBps"] == network["busBandwidthGBps"]
    assert "progress" not in patch["status"]
    assert "preflight: unchecked" in run.stdout
    print(f"CPU preflight over gloo, 2 processes: {network['busBandwidthGBps']} GB/s bus bandwidth")


def _path_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PYTHONPATH", "TMPDIR")}
