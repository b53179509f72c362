"""The trainer's status reporter against a real HTTP server on loopback (standing in for the
API server's status subresource; the cluster tests use the real one)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from kubetune_trainer.runtime.reporter import StatusSink


def test_a_forced_report_does_not_hold_back_the_first_step() -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        sink = StatusSink(url, "token", None, "job", "team-a", min_interval=60)
        assert sink.report({"network": {"busBandwidthGBps": 1.0}}, force=True)  # the preflight
        assert sink.report({"step": 1, "totalSteps": 60})  # the first step, right after it
        assert not sink.report({"step": 2, "totalSteps": 60})  # rate-limited
        assert sink.report({"step": 60, "totalSteps": 60}, force=True)  # the last
    finally:
        server.shutdown()
    steps = [r["status"].get("progress", {}).get("step") for r in received]
    assert steps == [None, 1, 60]
    assert received[0]["status"] == {"network": {"busBandwidthGBps": 1.0}}
    assert all(r["status"]["progress"]["updatedAt"] for r in received[1:])


def test_evaluation_and_kept_checkpoints_fit_the_status_schema() -> None:
    """What the trainer patches is what the CRD's status schema (generated from
    FineTuneJobStatus) keeps: nothing pruned, nothing null (a merge patch's null deletes)."""
    from kubetune_api.status import FineTuneJobStatus

    kept = [
        {"step": 30, "path": "/w/checkpoint-30", "metrics": {"train_loss": 2.1, "valid_loss": 2.3}},
        {"step": 60, "path": "/w/checkpoint-60", "metrics": {"valid_mean_token_accuracy": 0.8}},
    ]
    evaluation = {
        "step": 60,
        "loss": 1.9,
        "meanTokenAccuracy": None,
        "toolCalls": {"turns": 24, "toolNameAccuracy": 0.9, "wellFormed": None},
        "samples": "/w/output/evaluation/tool_calls.jsonl",
    }
    body = StatusSink.body({"step": 60, "checkpointsKept": kept, "evaluation": evaluation})
    status = body["status"]
    assert status["checkpoints"]["kept"] == kept
    assert status["evaluation"]["toolCalls"] == {"turns": 24, "toolNameAccuracy": 0.9}
    assert "meanTokenAccuracy" not in status["evaluation"]
    parsed = FineTuneJobStatus.model_validate(status).to_wire()
    assert parsed["evaluation"] == status["evaluation"]
    checkpoints = parsed["checkpoints"]
    assert isinstance(checkpoints, dict) and checkpoints["kept"] == kept


def test_dpo_rewards_reach_the_status_patch_and_fit_the_status_schema() -> None:
    """TRL's DPO metrics, as the Progress callback maps them, pass the status model (the CRD's
    status schema is generated from it, so the API server keeps them instead of pruning)."""
    from kubetune_api.status import Progress
    from kubetune_trainer.training.callbacks import rewards

    logs = {
        "loss": 0.3,
        "rewards/chosen": -1.5,
        "rewards/rejected": -4.0,
        "rewards/accuracies": 0.875,
        "rewards/margins": 2.5,
        "logps/chosen": -30.0,
    }
    found = rewards(logs)
    assert found == {"chosen": -1.5, "rejected": -4.0, "accuracy": 0.875, "margin": 2.5}
    assert rewards({"loss": 1.0}) is None  # SFT
    body = StatusSink.body({"step": 3, "loss": 0.3, "rewards": found})
    assert Progress.model_validate(body["status"]["progress"]).rewards is not None
    assert body["status"]["progress"]["rewards"] == found
