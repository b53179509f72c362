"""The metric history in the status stays bounded: a FineTuneJob with every status field filled
and a 100,000-step history (a line per step, an evaluation every 500) stays under 16 KiB, and
is what the CRD's schema accepts."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import yaml

from kubetune.api.crd import crd
from kubetune_api.status import FineTuneJobStatus
from kubetune_trainer.report.metrics_tail import OVERVIEW, RECENT, MetricsTail
from kubetune_trainer.runtime.reporter import StatusSink
from tests.support.factories import REPO

LIMIT = 16 * 1024
SEED5 = REPO / "examples" / "seed5-llama3-qlora-xlam-multinode.yaml"


def synthetic_lines(steps: int) -> list[dict[str, Any]]:
    """What a long run logs: noisy, decaying values with long decimals (the worst case for
    size), a training line every step, an evaluation line every 500."""
    lines: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        lines.append(
            {
                "step": step,
                "epoch": step / 3000,
                "loss": 2.0 + math.exp(-step / 9000) + 0.0123456789 * math.sin(step),
                "learning_rate": 1.9999e-4 * (1 - step / steps),
                "grad_norm": 0.87654321 + 0.1 * math.cos(step),
                "tokens_per_second": 123456.7 + step % 97,
            }
        )
        if step % 500 == 0:
            lines.append(
                {
                    "step": step,
                    "eval_loss": 2.1234567 + 1 / step,
                    "eval_mean_token_accuracy": 0.6543219,
                }
            )
    return lines


def full_status(tail: MetricsTail) -> dict[str, Any]:
    """Every field the trainer and the operator write, as large as they get."""
    scores = {
        "turns": 500,
        "toolTurns": 420,
        "noToolTurns": 80,
        "toolNameAccuracy": 0.91234,
        "argumentsExactMatch": 0.81234,
        "calledWhenExpected": 0.97654,
        "refrainedWhenNotExpected": 0.88765,
        "wellFormed": 0.99123,
        "malformed": 3,
        "generationErrors": 1,
    }
    report = {
        "step": 100000,
        "totalSteps": 100000,
        "epoch": 33.3333,
        "loss": 2.01234,
        "tokensPerSecond": 123456.7,
        "etaSeconds": 0,
        "percent": 100,
        "rewards": {"chosen": 1.2345, "rejected": -1.2345, "accuracy": 0.9123, "margin": 2.469},
        "updatedAt": "2026-12-06T05:00:00Z",
        "latestCheckpoint": "/workspace/jobs/llama3-8b-xlam-qlora/checkpoints/checkpoint-100000",
        "checkpointsKept": [
            {
                "step": s,
                "path": f"/workspace/jobs/llama3-8b-xlam-qlora/checkpoints/checkpoint-{s}",
                "metrics": {
                    "train_loss": 2.01234,
                    "valid_loss": 2.12345,
                    "valid_mean_token_accuracy": 0.65432,
                },
            }
            for s in (96000, 97000, 98000, 99000, 100000)
        ],
        "evaluation": {
            "step": 100000,
            "loss": 2.12345,
            "meanTokenAccuracy": 0.65432,
            "toolCalls": scores,
            "baselineToolCalls": scores,
            "samples": "/workspace/jobs/llama3-8b-xlam-qlora/output/evaluation/tool_calls.jsonl",
        },
        "network": {
            "backend": "nccl",
            "transport": "IB",
            "transportSource": "ncclLog",
            "busBandwidthGBps": 45.123,
            "algBandwidthGBps": 24.321,
            "messageBytes": 268435456,
            "ranks": 16,
            "nodes": 2,
            "fabric": "infiniband",
            "expectedMinGBps": 10.0,
            "memlock": "unlimited",
            "verdict": "ok",
            "message": "all-reduce bus bandwidth 45.1 GB/s across 2 nodes over IB: as expected for infiniband",
            "measuredAt": "2026-12-06T05:00:00Z",
        },
        "metrics": tail.status("/workspace/jobs/llama3-8b-xlam-qlora/metrics.jsonl"),
    }
    status: dict[str, Any] = StatusSink.body(report)["status"]
    conditions = [
        {
            "type": t,
            "status": "True" if t == "Succeeded" else "False",
            "reason": r,
            "message": m,
            "lastTransitionTime": "2026-12-06T05:00:00Z",
            "observedGeneration": 1,
        }
        for t, r, m in (
            ("Pending", "Starting", "waiting for the training pods to start"),
            ("Preparing", "Preparing", "fetching the model and preparing the dataset"),
            ("Training", "Training", "training"),
            (
                "Succeeded",
                "TrainingSucceeded",
                "PyTorchJob llama3-8b-xlam-qlora is successfully completed.",
            ),
        )
    ]
    status.update(
        phase="Succeeded",
        conditions=conditions,
        observedGeneration=1,
        effectiveBatchSize=512,
        pytorchJobName="llama3-8b-xlam-qlora",
        startTime="2026-12-01T05:00:00Z",
        completionTime="2026-12-06T05:00:00Z",
        outputs={
            "claimName": "llama3-8b-xlam-qlora-workspace",
            "adapter": "/workspace/jobs/llama3-8b-xlam-qlora/output/adapter",
            "merged": "/workspace/jobs/llama3-8b-xlam-qlora/output/merged",
            "manifest": "/workspace/jobs/llama3-8b-xlam-qlora/output/manifest.json",
        },
    )
    return status


def tail_of(steps: int) -> MetricsTail:
    tail = MetricsTail()
    for line in synthetic_lines(steps):
        tail.add(line)
    return tail


def test_a_100000_step_history_keeps_the_object_under_16_kib() -> None:
    tail = tail_of(100_000)
    status = full_status(tail)
    FineTuneJobStatus.model_validate(status)  # the model the CRD is generated from
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    jsonschema.validate(status, schema)  # maxItems included
    job = yaml.safe_load(SEED5.read_text())
    job["metadata"].update(
        namespace="research",
        uid="0f0e0d0c-0b0a-0908-0706-050403020100",
        generation=1,
        resourceVersion="123456789",
        creationTimestamp="2026-12-01T04:59:00Z",
    )
    job["status"] = status
    size = len(json.dumps(job, separators=(",", ":")))
    assert size < LIMIT, f"{size} bytes"
    points = status["metrics"]["points"]
    assert len(points) <= OVERVIEW + RECENT
    assert points[0]["step"] == 1 and points[-1]["step"] == 100_000  # the whole run, to its end
    assert [p["step"] for p in points[-RECENT:]] == list(range(100_000 - RECENT + 1, 100_001))
    assert status["metrics"]["logged"] == 100_000
    assert points[-1]["evalLoss"] == float(f"{2.1234567 + 1 / 100_000:.5g}")  # merged into its step


def test_the_history_does_not_grow_with_the_run() -> None:
    for steps in (100, 1_000, 10_000, 100_000):
        history = tail_of(steps).status("m")
        assert len(history["points"]) <= OVERVIEW + RECENT, steps
        assert len(json.dumps(history)) < 6 * 1024, steps


def test_the_overview_is_evenly_spaced_from_the_first_step() -> None:
    tail = tail_of(5_000)
    overview = [p["step"] for p in tail.overview]
    every = tail.status(None)["every"]
    assert overview == list(range(1, 5_001, every))[: len(overview)]
    assert OVERVIEW // 2 <= len(overview) <= OVERVIEW
