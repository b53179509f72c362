"""The network preflight: a few seconds of all-reduce across every rank before the first step.

Multi-node training that crawls is most often NCCL on TCP sockets because the pod cannot use
the RDMA devices; nothing says so until someone does the arithmetic a week later. Before
training, every rank all-reduces a few buffers in the job's own process group (NCCL on GPUs,
gloo on CPU), the bus bandwidth is logged and reported in `status.network` (and
`progress.json`), and a multi-node GPU job on an RDMA fabric that is far below it — or on
sockets — is judged `belowFabric`: the operator shows the NetworkDegraded condition, or with
`preflight: fail` the job exits with EXIT_PREFLIGHT (1–127: not retried by the PyTorchJob).

Bus bandwidth is nccl-tests' figure (its doc/PERFORMANCE.md): algorithm bandwidth (bytes /
time) × 2(n−1)/n for all-reduce, which makes it comparable with a link's speed whatever the
rank count. Across nodes the ring's slowest link — the inter-node network — sets it.
"""

from __future__ import annotations

import glob
import os
import re
import resource
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_trainer.runtime.distributed import all_reduce, initialized
from kubetune_trainer.runtime.log import log
from kubetune_trainer.runtime.progress import ProgressSink

EXIT_PREFLIGHT = 4
GPU_SIZES = (8 << 20, 64 << 20, 256 << 20)
CPU_SIZES = (1 << 20, 8 << 20, 32 << 20)
ITERATIONS = 5
# Half of a 100 Gb/s link (12.5 GB/s), the slowest RDMA link GPU clusters are built with (EDR
# InfiniBand, 100 GbE RoCE, first-generation EFA): below it the fabric is not doing its job.
FABRIC_FLOOR_GBPS = {"infiniband": 6.0, "roce": 6.0, "efa": 6.0}
USING_NETWORK = re.compile(r"NCCL INFO Using network (\S.*?)\s*$")


@dataclass(frozen=True)
class Measurement:
    nbytes: int
    seconds: float
    """One all-reduce, averaged over ITERATIONS, on the slowest rank."""
    ranks: int

    @property
    def alg_gbps(self) -> float:
        return self.nbytes / self.seconds / 1e9

    @property
    def bus_gbps(self) -> float:
        return self.alg_gbps * 2 * (self.ranks - 1) / self.ranks


def transport(
    backend: str, nodes: int, env: dict[str, str], nccl_log: list[str], rdma_devices: list[str]
) -> tuple[str | None, str | None]:
    """The network between nodes and how we know: NCCL's own "Using network" line (when
    NCCL_DEBUG_FILE captured it), else what the environment forces, else the devices."""
    if "nccl" not in backend:
        return "TCP (gloo)", "backend"
    if nodes < 2:  # NCCL keeps to NVLink/PCIe peer-to-peer or shared memory on one node
        return "intra-node", "topology"
    for line in reversed(nccl_log):
        if found := USING_NETWORK.search(line):
            return found.group(1), "ncclLog"
    if env.get("NCCL_NET"):
        return env["NCCL_NET"], "environment"
    if env.get("NCCL_IB_DISABLE") == "1":
        return "Socket", "environment"
    if not rdma_devices:  # IB, RoCE and EFA all need a verbs device in the pod
        return "Socket", "devices"
    return None, None


def judge(
    bus_gbps: float, net: str | None, fabric: str, nodes: int, gpus: bool
) -> tuple[str, float | None, str]:
    """(verdict, floor, message): `belowFabric` only for a multi-node GPU job on an RDMA fabric
    that runs on sockets or below the fabric's floor."""
    measured = f"{bus_gbps:.2f} GB/s bus bandwidth over {net or 'an undetected transport'}"
    floor = FABRIC_FLOOR_GBPS.get(fabric)
    if nodes < 2 or not gpus or floor is None:
        why = "one node" if nodes < 2 else "CPU training" if not gpus else f"fabric {fabric}"
        return "unchecked", None, f"{measured}; not judged ({why})"
    if net == "Socket":
        return (
            "belowFabric",
            floor,
            f"NCCL is on TCP sockets although spec.distributed.fabric is {fabric} ({measured}): "
            "the pod cannot use the RDMA devices — check resources.extendedResources, "
            "security.ipcLock, the memlock limit and NCCL_DEBUG=INFO's NET lines",
        )
    if bus_gbps < floor:
        return (
            "belowFabric",
            floor,
            f"{measured} is far below {fabric} (at least {floor:g} GB/s expected): "
            "check NCCL_DEBUG=INFO's NET lines for the transport and GPUDirect RDMA",
        )
    return "ok", floor, f"{measured}, as {fabric} should give (≥ {floor:g} GB/s)"


def memlock() -> str:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


def nccl_log_lines(env: dict[str, str]) -> list[str]:
    """This process's NCCL debug file, when NCCL_DEBUG_FILE sends the log to one (%h: host,
    %p: pid, as NCCL expands them)."""
    pattern = env.get("NCCL_DEBUG_FILE")
    if not pattern:
        return []
    path = Path(pattern.replace("%h", socket.gethostname()).replace("%p", str(os.getpid())))
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def measure(sizes: tuple[int, ...], iterations: int = ITERATIONS) -> list[Measurement]:
    """All-reduce each size `iterations` times after one warm-up; every rank runs the same plan,
    and each size's time is the slowest rank's (MAX all-reduce), so all ranks agree."""
    import torch
    import torch.distributed as dist

    on_gpu = "nccl" in str(dist.get_backend())
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    buffer = torch.ones(max(sizes) // 4, dtype=torch.float32, device=device)
    ranks = dist.get_world_size()
    out = []
    for nbytes in sizes:
        view = buffer[: nbytes // 4]
        dist.all_reduce(view)  # warm-up: connections, NCCL channels
        dist.barrier()
        if on_gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(view)
        if on_gpu:
            torch.cuda.synchronize()
        elapsed = all_reduce(time.perf_counter() - start, dist.ReduceOp.MAX)
        out.append(Measurement(nbytes, elapsed / iterations, ranks))
    return out


def preflight(config: TrainerConfig, sink: ProgressSink) -> dict[str, Any] | None:
    """Measure, log and (rank 0) report the network; None when off or with a single rank."""
    import torch.distributed as dist

    topo = config.topology
    if topo.preflight == "off" or not initialized() or dist.get_world_size() < 2:
        return None
    backend = str(dist.get_backend())
    sizes = GPU_SIZES if "nccl" in backend else CPU_SIZES
    results = measure(sizes)
    env = dict(os.environ)
    net, source = transport(
        backend, topo.nodes, env, nccl_log_lines(env), glob.glob("/dev/infiniband/uverbs*")
    )
    # One rank on sockets drags the ring down for all: every rank judges by the worst one.
    if all_reduce(1.0 if net == "Socket" else 0.0, dist.ReduceOp.MAX) > 0:
        net = "Socket"
    last = results[-1]
    verdict, floor, message = judge(last.bus_gbps, net, topo.fabric, topo.nodes, topo.gpus)
    report = {
        "backend": "nccl" if "nccl" in backend else backend,
        "transport": net,
        "transportSource": source,
        "busBandwidthGBps": round(last.bus_gbps, 3),
        "algBandwidthGBps": round(last.alg_gbps, 3),
        "messageBytes": last.nbytes,
        "ranks": last.ranks,
        "nodes": topo.nodes,
        "fabric": topo.fabric,
        "expectedMinGBps": floor,
        "memlock": memlock(),
        "verdict": verdict,
        "message": message,
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if dist.get_rank() == 0:
        for m in results:
            log(
                f"preflight: all-reduce {m.nbytes >> 20} MiB in {m.seconds * 1e3:.2f} ms: "
                f"bus {m.bus_gbps:.3f} GB/s, alg {m.alg_gbps:.3f} GB/s ({m.ranks} ranks)"
            )
        log(f"preflight: {verdict}: {message}; memlock {report['memlock']}")
        sink.report({"network": report}, force=True)
    return report
