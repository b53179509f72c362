"""examples/tiny-sft-dpo.yaml through the operator, on the process node and in kind: the SFT stage trains
and exports a merged model, the DPO stage waits for it, starts from it (`model.fromJob`),
trains with TRL's DPOTrainer and reports its rewards in the FineTuneJob status."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.chain import Chain
from tests.support.factories import EXAMPLES, example_docs
from tests.support.kube import KubectlError

EXAMPLE = next(p for p in EXAMPLES if p.name == "tiny-sft-dpo.yaml")
SFT_STEPS, DPO_STEPS = 20, 20


def status_of(chain: Chain, name: str) -> dict[str, Any]:
    try:
        return chain.kube.get("finetunejob", name).get("status") or {}
    except KubectlError:
        return {}


def test_sft_then_dpo_chain_through_the_operator(chain: Chain) -> None:
    claim = chain.claim("tiny-workspace")  # the example's existingClaim
    for name in ("tiny-chat.jsonl", "tiny-preference.jsonl"):
        chain.put(claim, f"data/{name}", (EXAMPLE.parent / "data" / name).read_bytes())
    sft, dpo = example_docs(EXAMPLE)
    sft["spec"]["training"].update({"maxSteps": SFT_STEPS, "saveSteps": SFT_STEPS})
    dpo["spec"]["training"].update({"maxSteps": DPO_STEPS, "saveSteps": DPO_STEPS})
    chain.kube.apply(chain.fit(dpo))  # first: it must wait for the SFT stage
    chain.kube.apply(chain.fit(sft))

    started, deadline = time.monotonic(), time.monotonic() + 1500
    dpo_phases: list[str] = []
    while time.monotonic() < deadline:
        status = status_of(chain, "tiny-dpo")
        phase = status.get("phase")
        if phase and (not dpo_phases or dpo_phases[-1] != phase):
            dpo_phases.append(phase)
        if (
            phase in ("Succeeded", "Failed")
            or status_of(chain, "tiny-sft").get("phase") == "Failed"
        ):
            break
        time.sleep(2)
    status = status_of(chain, "tiny-dpo")
    assert status.get("phase") == "Succeeded", (
        f"phases {dpo_phases}; dpo {json.dumps(status, indent=1)}; "
        f"sft {json.dumps(status_of(chain, 'tiny-sft'), indent=1)}\n{chain.debug()}"
    )
    print(f"\ne2e SFT→DPO chain ({chain.where}): {time.monotonic() - started:.1f}s wall")

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
