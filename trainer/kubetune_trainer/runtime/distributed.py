"""The two collectives the trainer's own code needs and the process group's shutdown; no-ops
when not distributed."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce(value: float, op: Any) -> float:
    """Reduce one number over all ranks (every rank must call it at the same point)."""
    if not initialized():
        return value
    device = (
        torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
    )
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=op)
    return float(tensor.item())


def barrier() -> None:
    if initialized():
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group while the interpreter is still whole. Left to the
    interpreter's exit, gloo's worker threads can abort a rank that finished all its work
    ("terminate called without an active exception", pytorch/pytorch#190489), and torchrun
    then fails the job. Called after success only: a rank that raised may leave the others
    inside a collective, where destroying the group can hang (pytorch/torchtitan#1342)."""
    if initialized():
        dist.destroy_process_group()
