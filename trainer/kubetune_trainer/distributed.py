"""The two collectives the trainer's own code needs, no-ops when not distributed."""

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
