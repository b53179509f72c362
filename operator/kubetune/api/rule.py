"""One rule of the FineTuneJob spec: its CEL expression (the API server evaluates it through the
CRD's `x-kubernetes-validations`) beside its Python twin (`kubetune validate`, `kubetune run`
and the operator), the field it names and the fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    field: str
    """Path of the offending field below `spec`, e.g. `method.quantization`."""
    cel: str
    """CEL over the spec (`self`); true when the spec is fine."""
    message: str
    """What is wrong and how to fix it."""
    holds: Callable[[Any], bool]
    """Python twin of `cel`."""
    detail: Callable[[Any], str] | None = None
    """The offending values, for messages outside the API server (CEL messages are static)."""

    def explain(self, spec: Any) -> str:
        return f"{self.message} ({self.detail(spec)})" if self.detail else self.message

    @property
    def path(self) -> str:
        return f"spec.{self.field}"


WORLD_SIZE_CEL = (
    "self.distributed.nodes * (self.distributed.gpusPerNode > 0 ? self.distributed.gpusPerNode"
    " : (has(self.distributed.processesPerNode) ? self.distributed.processesPerNode : 1))"
)
"""CEL of the spec's world size (nodes × processes per node), the twin of
`FineTuneJobSpec.world_size`; a term of the rules on batch sizes."""
