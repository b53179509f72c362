"""The five seed workloads, scaled down, end to end through the cluster chain.

Each examples/seed*.yaml as written — method, strategy, data format, template, roles, chaining,
node count, output formats — with only what a 2-core CPU machine forces changed
(`scale_down`): the tiny model instead of the hub model (and so no GGUF output), a few
hundred rows in the same format on a volume instead of the hub dataset, a few steps, no GPUs
(so ZeRO-3 without offload, bf16 instead of fp16, adamw_8bit instead of the paged variant:
the API refuses the GPU-only settings on CPU), no CPU/memory requests, and the process node's
placement.
The FineTuneJobs go through kubectl, the operator, the training-operator and real pods.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import seed_data
from tests.support.chain import KIND_UP_TIMEOUT_S, Chain
from tests.support.factories import EXAMPLES, claims_read, example_docs
from tests.support.kube import Kube, KubectlError
from tests.support.process_node import PLACEMENT, ProcessNode, claim_dir

SEEDS = [p for p in EXAMPLES if p.name.startswith("seed")]
HERE = Path(__file__).resolve().parent
TINY_CHAT = EXAMPLES[0].parent / "data" / "tiny-chat.jsonl"
DATA_CLAIM = "seed-data"
DATA_FILES = {"messages": "messages.jsonl", "glaive": "glaive.jsonl", "xlam": "xlam.jsonl"}
STEPS = 8
WORKSPACE = "/workspace/"


def scale_down(doc: dict[str, Any], chain: Chain) -> dict[str, Any]:
    spec = doc["spec"]
    if "source" in spec["model"]:
        spec["model"] = {"source": "builtin://tiny-llama"}
    for source in (spec.get("dataset") or {}).get("sources", []):
        if not source["source"].startswith("pvc://"):  # the hub → the same format on a volume
            source["source"] = f"pvc://{DATA_CLAIM}/{DATA_FILES[source['format']]}"
            source.pop("split", None)
            source.pop("tokenSecretRef", None)
    training = spec["training"]
    training.pop("epochs", None)
    training["maxSteps"] = STEPS
    training["maxLength"] = min(training.get("maxLength", 2048), 512)  # tool schemas are long
    training["microBatchSize"] = min(training.get("microBatchSize", 1), 4)
    if "globalBatchSize" in training:
        training["globalBatchSize"] = training["microBatchSize"] * 2
    for key in ("saveSteps", "evalSteps"):
        if key in training:
            training[key] = STEPS // 2
    training["loggingSteps"] = 2
    if training.get("precision") == "fp16":
        training["precision"] = "bf16"  # fp16 mixed precision needs GPUs
    if training.get("optimizer", "").startswith("paged_"):
        training["optimizer"] = training["optimizer"].removeprefix("paged_")
    if (quant := spec["method"].get("quantization")) and quant.get("computeDtype") == "float16":
        quant["computeDtype"] = "bfloat16"
    distributed = spec["distributed"]
    distributed["gpusPerNode"] = 0
    if distributed.get("strategy") == "deepspeed-zero3-offload":
        distributed["strategy"] = "deepspeed-zero3"  # offloading needs GPUs to offload from
    if "gguf" in spec.get("output", {}).get("formats", []):
        # llama.cpp's converter refuses the tiny model's trained BPE tokenizer (it knows
        # released tokenizers by hash); tests/trainer/test_gguf_export.py runs seed 2's GGUF
        # export on a tiny model with a SentencePiece tokenizer instead.
        spec["output"]["formats"].remove("gguf")
        spec["output"].pop("gguf", None)
    spec.pop("resources", None)
    spec.pop("image", None)  # the process node's image is this checkout's environment
    # The example's Kueue queue is the user's cluster's; tests/cluster/test_operator_seeds.py
    # runs seed 5 through real Kueue on the fake GPU nodes.
    spec.pop("scheduling", None)
    if "existingClaim" not in spec.get("storage", {}):
        spec["storage"] = {"size": "1Gi"}
    if wandb := spec.get("tracking", {}).get("wandb"):
        wandb["mode"] = "offline"  # no W&B server here; the run is written to the volume
    if spec.get("entrypoint"):
        spec["entrypoint"]["args"] = [*spec["entrypoint"]["args"], "--steps", str(STEPS)]
        spec["env"] = [{"name": "PYTHONPATH", "value": f"{WORKSPACE}code"}]
    return chain.fit(doc)


def put_inputs(chain: Chain, docs: list[dict[str, Any]]) -> None:
    chain.kube.apply(
        *(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "stringData": {key: "not-a-real-credential"},
            }
            for name, key in (("hf-token", "token"), ("wandb", "api-key"))
        )
    )
    for claim in claims_read(docs) | {DATA_CLAIM}:
        chain.claim(claim)
    chain.put(DATA_CLAIM, "messages.jsonl", TINY_CHAT.read_bytes())
    chain.put(DATA_CLAIM, "glaive.jsonl", seed_data.glaive())
    chain.put(DATA_CLAIM, "xlam.jsonl", seed_data.xlam())
    for doc in docs:
        for source in doc["spec"].get("dataset", {}).get("sources", []):
            claim, _, path = source["source"].removeprefix("pvc://").partition("/")
            if claim != DATA_CLAIM:  # seed 4's own data volume
                chain.put(claim, path, TINY_CHAT.read_bytes())
        if doc["spec"].get("entrypoint"):  # seed 3's research code and corpus on its workspace
            claim = doc["spec"]["storage"]["existingClaim"]
            for name in ("__init__.py", "train_stage.py"):
                chain.put(claim, f"code/research/{name}", (HERE / "research" / name).read_bytes())
            chain.put(claim, "code/curriculum.jsonl", TINY_CHAT.read_bytes())


def wait_done(kube: Kube, name: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = kube.get("finetunejob", name).get("status") or {}
        except KubectlError:
            status = {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return status
        time.sleep(1)
    return status


def on_claim(chain: Chain, status: dict[str, Any], path: str) -> str:
    """Read a file a status path points at (a /workspace path on the job's claim)."""
    text = chain.read(status["outputs"]["claimName"], path.removeprefix(WORKSPACE))
    assert text is not None, f"{path} is not on the volume"
    return text


@pytest.fixture(scope="module")
def started_seeds(
    cluster: Kube, operator: Any, process_node: ProcessNode
) -> Iterator[dict[str, tuple[Chain, list[dict[str, Any]]]]]:
    """Every seed applied at once, each in a namespace of its own, as a cluster's users would:
    they run side by side (the process node gives each PyTorchJob its own master port), and
    each test below waits for its own seed."""
    started: dict[str, tuple[Chain, list[dict[str, Any]]]] = {}
    for example in SEEDS:
        namespace = f"seed-{uuid.uuid4().hex[:8]}"
        cluster.run("create", "namespace", namespace, namespaced=False)
        chain = Chain(
            kube=cluster.with_namespace(namespace), placement=PLACEMENT, node=process_node
        )
        docs = [scale_down(d, chain) for d in example_docs(example)]
        put_inputs(chain, docs)
        chain.kube.apply(*docs)  # chained stages wait for the stage before them
        started[example.stem] = (chain, docs)
    yield started
    for chain, _ in started.values():
        cluster.run("delete", "namespace", chain.kube.namespace, "--wait=false", namespaced=False)


@pytest.mark.parametrize("example", SEEDS, ids=[p.stem for p in SEEDS])
def test_seed_workload_end_to_end(
    started_seeds: dict[str, tuple[Chain, list[dict[str, Any]]]], example: Path
) -> None:
    chain, docs = started_seeds[example.stem]
    check_seed(chain, docs, example)


@pytest.mark.kind
@pytest.mark.timeout(KIND_UP_TIMEOUT_S + 900)
def test_seed5_qlora_across_two_pods_in_kind(kind_chain: Chain) -> None:
    """Seed 5 (QLoRA on xlam, 2 nodes) in kind: the multi-pod workload, in real containers."""
    example = next(p for p in SEEDS if p.stem.startswith("seed5"))
    docs = [scale_down(d, kind_chain) for d in example_docs(example)]
    put_inputs(kind_chain, docs)
    kind_chain.kube.apply(*docs)
    check_seed(kind_chain, docs, example)


def check_seed(chain: Chain, docs: list[dict[str, Any]], example: Path) -> None:
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for doc in docs:
        name = doc["metadata"]["name"]
        status = wait_done(chain.kube, name)
        assert status.get("phase") == "Succeeded", (
            f"{name}: {json.dumps(status, indent=1)}\n{chain.debug()}"
        )
        results[name] = status
        loss = (status.get("progress") or {}).get("loss")
        print(
            f"\n{example.stem} {name}: Succeeded {time.monotonic() - started:.1f}s into the wait, loss {loss}"
        )
    CHECKS[example.stem](chain, docs, results)


# --- what each seed must show beyond Succeeded ------------------------------------------------


def manifest(chain: Chain, status: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(on_claim(chain, status, status["outputs"]["manifest"])))


def prepared(chain: Chain, status: dict[str, Any], job: str) -> dict[str, Any]:
    return dict(
        json.loads(chain.read(status["outputs"]["claimName"], f"jobs/{job}/prepared.json") or "{}")
    )


def check_seed1(chain: Chain, docs: list[dict[str, Any]], results: dict[str, Any]) -> None:
    stage1, stage2 = (d["metadata"]["name"] for d in docs)
    first, second = results[stage1], results[stage2]
    assert first["progress"]["step"] == STEPS == second["progress"]["step"]
    # Stage 2 trained from stage 1's final (merged, full) model.
    assert manifest(chain, second)["baseModel"]["path"] == first["outputs"]["merged"]
    for status in (first, second):
        assert chain.exists(
            status["outputs"]["claimName"],
            status["outputs"]["merged"].removeprefix(WORKSPACE) + "/model.safetensors",
        )
    # ZeRO-2, then ZeRO-3: DeepSpeed's own checkpoint layout shows which ran.
    for name, stage in ((stage1, 2), (stage2, 3)):
        config = chain.kube.get("configmap", selector=f"kubetune.io/job={name}")[0]
        assert f"deepspeed-zero{stage}" in config["data"]["trainer.yaml"]


def check_seed2(chain: Chain, docs: list[dict[str, Any]], results: dict[str, Any]) -> None:
    (name,) = (d["metadata"]["name"] for d in docs)
    status = results[name]
    outputs = status["outputs"]
    assert outputs["adapter"] and outputs["merged"]
    claim = outputs["claimName"]
    assert chain.exists(claim, outputs["adapter"].removeprefix(WORKSPACE) + "/adapter_config.json")
    assert chain.exists(claim, outputs["merged"].removeprefix(WORKSPACE) + "/model.safetensors")
    report = prepared(chain, status, name)["report"]
    assert report["train"]["rows"] < report["train"]["samples"]  # packed
    assert report["eval"]["samples"] > 0  # evalFraction held some out


def check_seed3(chain: Chain, docs: list[dict[str, Any]], results: dict[str, Any]) -> None:
    names = [d["metadata"]["name"] for d in docs]
    stages = [
        json.loads(on_claim(chain, results[n], f"{WORKSPACE}jobs/{n}/output/stage.json"))
        for n in names
    ]
    assert [s["stage"] for s in stages] == ["a", "b", "c"]
    assert [s["curriculum"] for s in stages] == ["short", "medium", "long"]
    for before, stage in zip(names, stages[1:], strict=False):
        # Each stage starts from the previous stage's latest (complete) checkpoint.
        assert stage["startedFrom"] == f"{WORKSPACE}jobs/{before}/checkpoints/checkpoint-{STEPS}"
    for n, stage in zip(names, stages, strict=True):
        assert stage["steps"] == STEPS and stage["loss"] == stage["loss"]  # finite
        claim = results[n]["outputs"]["claimName"]
        # DeepSpeed (ZeRO-2 from the job's strategy) wrote its own shards into the checkpoint.
        assert chain.exists(claim, f"jobs/{n}/checkpoints/checkpoint-{STEPS}/global_step{STEPS}")
        print(f"seed3 {n}: loss {stage['loss']:.4f}")


def check_seed4(chain: Chain, docs: list[dict[str, Any]], results: dict[str, Any]) -> None:
    import datasets

    (name,) = (d["metadata"]["name"] for d in docs)
    status = results[name]
    info = prepared(chain, status, name)
    claim = status["outputs"]["claimName"]
    rows = datasets.load_from_disk(
        str(claim_dir(chain.kube, claim) / info["dataset"].removeprefix(WORKSPACE) / "train")
    )
    row = rows[0]
    supervised = [
        t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
    ]
    # Loss only on the assistant's turns: some tokens masked, some trained.
    assert 0 < len(supervised) < len(row["input_ids"])
    assert chain.exists(claim, status["outputs"]["merged"].removeprefix(WORKSPACE) + "/config.json")


def check_seed5(chain: Chain, docs: list[dict[str, Any]], results: dict[str, Any]) -> None:
    (name,) = (d["metadata"]["name"] for d in docs)
    status = results[name]
    context = f"status {json.dumps(status, indent=1)}\n{chain.debug()}"
    pods = chain.kube.get("pods", selector=f"kubetune.io/job={name}")
    phases = [(p["metadata"]["name"], p["status"]["phase"]) for p in pods]
    assert len(pods) == 2 and all(phase == "Succeeded" for _, phase in phases), phases
    assert manifest(chain, status)["method"] == "qlora"
    claim = status["outputs"]["claimName"]
    assert chain.exists(
        claim, status["outputs"]["adapter"].removeprefix(WORKSPACE) + "/adapter_model.safetensors"
    ), context
    # the offline W&B run, on the volume
    assert chain.exists(claim, f"jobs/{name}/wandb"), context
    # the preflight measured the two pods' gloo group; CPU has no fabric to judge it by
    assert "network" in status, context
    network = status["network"]
    assert network["busBandwidthGBps"] > 0 and network["nodes"] == 2, network
    assert network["fabric"] == "infiniband" and network["verdict"] == "unchecked", network


CHECKS = {
    "seed1-llama3-two-stage-full": check_seed1,
    "seed2-glaive-chatml-lora": check_seed2,
    "seed3-custom-entrypoint-chain": check_seed3,
    "seed4-gemma-270m-jsonl": check_seed4,
    "seed5-llama3-qlora-xlam-multinode": check_seed5,
}
