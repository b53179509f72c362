"""Prometheus metrics of the operator: jobs by phase, reconcile latency, errors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

jobs_by_phase = Gauge("kubetune_finetunejobs", "FineTuneJobs seen, by phase", ["phase"])
reconcile_seconds = Histogram(
    "kubetune_reconcile_seconds",
    "Time to reconcile one FineTuneJob",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
reconcile_errors = Counter("kubetune_reconcile_errors_total", "Reconciles that raised")
children_created = Counter("kubetune_children_created_total", "Objects created for FineTuneJobs")
api_writes = Counter(
    "kubetune_api_writes_total", "Writes to the API server, by verb and kind", ["verb", "kind"]
)

_phase_of: dict[str, str] = {}


def record_phase(uid: str, phase: str | None) -> None:
    """Move one job between phase counts (constant time: this runs on every reconcile)."""
    old = _phase_of.pop(uid, None) if phase is None else _phase_of.get(uid)
    if old == phase:
        return
    if old is not None:
        jobs_by_phase.labels(phase=old).dec()
    if phase is not None:
        _phase_of[uid] = phase
        jobs_by_phase.labels(phase=phase).inc()


def serve(port: int) -> None:
    if port:
        start_http_server(port)
