"""Evaluation through the operator: a LoRA job on the small tool-calling set, with a separate
validation file on the volume, reports its held-out loss, mean token accuracy, kept checkpoints
with their metrics, and tool-call scores before and after training in the FineTuneJob status."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from tests.support.chain import Chain
from tests.support.factories import EXAMPLES, example_docs
from tests.support.kube import KubectlError
from tests.support.tool_data import COMPACT_TEMPLATE, PROJECTIONS, tool_conversation

TINY = next(p for p in EXAMPLES if p.name == "tiny.yaml")


def lines(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return "".join(json.dumps(tool_conversation(rng)) + "\n" for _ in range(n)).encode()


def tool_job(chain: Chain, claim: str) -> dict[str, Any]:
    doc = example_docs(TINY)[0]
    doc["metadata"]["name"] = "tools"
    spec = doc["spec"]
    spec["dataset"] = {
        "sources": [{"source": "data/tools-train.jsonl"}],
        "validation": {"source": "data/tools-valid.jsonl"},
        "chatTemplate": {"jinja": COMPACT_TEMPLATE},
    }
    spec["method"]["lora"] = {"r": 16, "alpha": 32, "dropout": 0.0, "targetModules": PROJECTIONS}
    spec["training"].update(
        {"maxSteps": 60, "learningRate": 5e-3, "warmupRatio": 0.0, "saveSteps": 30}
    )
    spec["evaluation"] = {"baseline": True, "maxNewTokens": 40}
    spec["storage"] = {"existingClaim": claim}
    return chain.fit(doc)


def test_tool_call_scores_reach_the_status(local_chain: Chain) -> None:
    chain = local_chain
    claim = chain.claim("tools-workspace")
    chain.put(claim, "data/tools-train.jsonl", lines(240, seed=1))
    chain.put(claim, "data/tools-valid.jsonl", lines(24, seed=2))
    chain.kube.apply(tool_job(chain, claim))
    deadline = time.monotonic() + 900
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = chain.kube.get("finetunejob", "tools").get("status") or {}
        except KubectlError:
            status = {}
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(2)
    assert status.get("phase") == "Succeeded", f"{json.dumps(status, indent=1)}\n{chain.debug()}"
    evaluation = status["evaluation"]
    print(f"\ne2e evaluation: {json.dumps(evaluation)}")
    assert "error" not in evaluation, evaluation
    assert evaluation["step"] == 60 and 0.5 < evaluation["meanTokenAccuracy"] <= 1.0
    before, after = evaluation["baselineToolCalls"], evaluation["toolCalls"]
    assert before["turns"] == after["turns"] == 24
    assert before["toolNameAccuracy"] == 0.0 and after["toolNameAccuracy"] >= 0.8, evaluation
    kept = status["checkpoints"]["kept"]
    assert [c["step"] for c in kept] == [30, 60]
    assert set(kept[-1]["metrics"]) == {"train_loss", "valid_loss", "valid_mean_token_accuracy"}
    samples = evaluation["samples"].removeprefix("/workspace/")
    assert len((chain.read(claim, samples) or "").splitlines()) == 24
