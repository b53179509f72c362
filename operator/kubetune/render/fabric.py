"""The NCCL environment of the training container: the fabric preset, then the job's own NCCL
settings, which always win.

Each preset sets what a user would otherwise look up for that network; docs/operator.md lists
the variables with their sources (NCCL's environment-variable reference, the aws-ofi-nccl and
AWS EFA documentation).
"""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import Obj
from kubetune_api.config import Fabric

FABRIC_ENV: dict[Fabric, dict[str, str]] = {
    # NCCL chooses: IB verbs when an RDMA device is usable, else TCP sockets, without a word.
    "auto": {},
    # NCCL_NET=IB: use NCCL's internal IB verbs transport or fail at init; never fall back.
    "infiniband": {"NCCL_NET": "IB", "NCCL_IB_DISABLE": "0"},
    # RoCE runs through the same IB verbs transport. The RoCE v2 GID is NCCL's own choice since
    # 2.21 (NCCL_IB_GID_INDEX defaults to -1, auto); pin it with nccl.extraEnv on older NCCL.
    "roce": {"NCCL_NET": "IB", "NCCL_IB_DISABLE": "0"},
    # libfabric's EFA provider under the aws-ofi-nccl net plugin, with GPUDirect RDMA.
    "efa": {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"},
    # TCP sockets only, on purpose.
    "tcp": {"NCCL_NET": "Socket", "NCCL_IB_DISABLE": "1"},
}


def nccl_env(job: FineTuneJob) -> list[Obj]:
    """The explicit `nccl` settings, then the fabric preset's variables that neither they nor
    `spec.env` set (explicit always wins; no variable appears twice)."""
    spec = job.spec
    nccl = spec.distributed.nccl
    explicit: dict[str, str | None] = {
        "NCCL_DEBUG": nccl.debug,
        "NCCL_SOCKET_IFNAME": nccl.socketIfname,
        "NCCL_IB_DISABLE": None if nccl.ibDisable is None else str(int(nccl.ibDisable)),
        "NCCL_NET_GDR_LEVEL": nccl.netGdrLevel,
        "TORCH_NCCL_ASYNC_ERROR_HANDLING": str(int(nccl.asyncErrorHandling)),
        "NCCL_ASYNC_ERROR_HANDLING": str(int(nccl.asyncErrorHandling)),
        **dict(sorted(nccl.extraEnv.items())),
    }
    env = {k: v for k, v in explicit.items() if v is not None}
    user = {var.name for var in spec.env}
    preset = FABRIC_ENV[spec.distributed.fabric]
    env |= {k: v for k, v in preset.items() if k not in env and k not in user}
    return [{"name": k, "value": v} for k, v in env.items()]
