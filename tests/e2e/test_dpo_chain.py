"""examples/tiny-sft-dpo.yaml through the operator, on the process node and in kind, with the
GRPO stage of examples/tiny-sft-grpo.yaml beside its DPO stage: the SFT stage trains and exports
a merged model; the DPO and GRPO stages both wait for it and start from it (`model.fromJob`).
DPO trains with TRL's DPOTrainer and reports its rewards in the FineTuneJob status; GRPO
samples with TRL's GRPOTrainer, scores the completions with the example's two graders and
reports its reward, KL and per-grader means there too. One SFT stage serves both chains."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.chain import Chain
from tests.support.factories import EXAMPLES, example_docs
from tests.support.kube import KubectlError

EXAMPLE = next(p for p in EXAMPLES if p.name == "tiny-sft-dpo.yaml")
GRPO_EXAMPLE = next(p for p in EXAMPLES if p.name == "tiny-sft-grpo.yaml")
SFT_STEPS, DPO_STEPS, GRPO_STEPS = 20, 20, 4
ENDED = ("Succeeded", "Failed")


def status_of(chain: Chain, name: str) -> dict[str, Any]:
    try:
        return chain.kube.get("finetunejob", name).get("status") or {}
    except KubectlError:
        return {}


def test_sft_then_dpo_and_grpo_chain_through_the_operator(chain: Chain) -> None:
    claim = chain.claim("tiny-workspace")  # the examples' existingClaim
    for name in ("tiny-chat.jsonl", "tiny-preference.jsonl"):
        chain.put(claim, f"data/{name}", (EXAMPLE.parent / "data" / name).read_bytes())
    sft, dpo = example_docs(EXAMPLE)
    _, grpo = example_docs(GRPO_EXAMPLE)
    sft["spec"]["training"].update({"maxSteps": SFT_STEPS, "saveSteps": SFT_STEPS})
    dpo["spec"]["training"].update({"maxSteps": DPO_STEPS, "saveSteps": DPO_STEPS})
    # the GRPO example's own SFT stage trains the same data: this chain's serves it
    grpo["spec"]["model"]["fromJob"]["name"] = sft["metadata"]["name"]
    grpo["spec"]["training"].update(
        {"maxSteps": GRPO_STEPS, "saveSteps": GRPO_STEPS, "loggingSteps": 2}
    )
    chain.kube.apply(chain.fit(dpo), chain.fit(grpo))  # first: they must wait for the SFT stage
    chain.kube.apply(chain.fit(sft))

    started, deadline = time.monotonic(), time.monotonic() + 1500
    dpo_phases: list[str] = []
    while time.monotonic() < deadline:
        status = status_of(chain, "tiny-dpo")
        phase = status.get("phase")
        if phase and (not dpo_phases or dpo_phases[-1] != phase):
            dpo_phases.append(phase)
        if (phase in ENDED and status_of(chain, "tiny-grpo").get("phase") in ENDED) or status_of(
            chain, "tiny-sft"
        ).get("phase") == "Failed":
            break
        time.sleep(2)
    status, grpo_status = status_of(chain, "tiny-dpo"), status_of(chain, "tiny-grpo")
    assert status.get("phase") == "Succeeded" and grpo_status.get("phase") == "Succeeded", (
        f"phases {dpo_phases}; dpo {json.dumps(status, indent=1)}; "
        f"grpo {json.dumps(grpo_status, indent=1)}; "
        f"sft {json.dumps(status_of(chain, 'tiny-sft'), indent=1)}\n{chain.debug()}"
    )
    print(f"\ne2e SFT→DPO+GRPO chain ({chain.where}): {time.monotonic() - started:.1f}s wall")

    progress = status["progress"]
    assert progress["step"] == DPO_STEPS, progress
    rewards = progress["rewards"]
    assert set(rewards) == {"chosen", "rejected", "accuracy", "margin"}, rewards
    assert rewards["accuracy"] > 0.5 and rewards["margin"] > 0, rewards
    # the held-out pairs' rewards too (the example's evalFraction), kept by the CRD's schema
    held_out = status["evaluation"]
    assert held_out["step"] == DPO_STEPS and set(held_out["rewards"]) == set(rewards), held_out

    # The DPO stage started from the SFT stage's merged output.
    manifest_path = status["outputs"]["manifest"].removeprefix("/workspace/")
    manifest = json.loads(chain.read(claim, manifest_path) or "{}")
    assert manifest["baseModel"]["path"].endswith("jobs/tiny-sft/output/merged"), manifest
    assert manifest["baseModel"]["fromJob"]["name"] == "tiny-sft"

    # GRPO: TRL's logged reward, KL, completion length and each grader reach the status.
    progress = grpo_status["progress"]
    assert progress["step"] == GRPO_STEPS, progress
    reinforcement = progress["reinforcement"]
    assert set(reinforcement["graders"]) == {r["name"] for r in grpo["spec"]["rewards"]}
    brevity = reinforcement["graders"]["brevity"]
    assert -1 <= brevity["mean"] <= 0 and brevity["std"] >= 0, reinforcement
    assert 0 <= reinforcement["graders"]["exact-answer"]["mean"] <= 1, reinforcement
    assert reinforcement["kl"] >= 0 and 0 <= reinforcement["clippedRatio"] <= 1, reinforcement
    assert 1 <= reinforcement["completionLength"] <= 16, reinforcement  # maxCompletionLength
    manifest_path = grpo_status["outputs"]["manifest"].removeprefix("/workspace/")
    manifest = json.loads(chain.read(claim, manifest_path) or "{}")
    assert manifest["baseModel"]["fromJob"]["name"] == "tiny-sft", manifest
    assert set(manifest["outputs"]) == {"adapter"}, manifest  # LoRA's default output
    assert chain.exists(claim, "jobs/tiny-grpo/output/adapter/adapter_model.safetensors")
