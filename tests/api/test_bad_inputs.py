"""A table of bad FineTuneJobs, spread over every section: each gets a field-level error.

Each case names the field path the error must start with. Nothing is rendered for any of
them (rendering only ever sees a parsed, valid job). The same table runs through the real
API server in the cluster tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import InvalidJob, parse_job
from tests.factories import DELETE, make_job

LONG = "a" * 64
DPO = {"spec.training.objective": "dpo", "spec.dataset.sources[0].format": "preference"}

# (id, document, expected path of the first problem, a word the message must contain)
# fmt: off
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # document and metadata
    ("wrong-kind", make_job(kind="Job"), "kind", "FineTuneJob"),
    ("wrong-api-version", make_job(apiVersion="kubetune.io/v1"), "apiVersion", "v1alpha1"),
    ("name-leading-digit", make_job(**{"metadata.name": "8b-run"}), "metadata.name", "DNS-1035"),
    ("name-uppercase", make_job(**{"metadata.name": "MyRun"}), "metadata.name", "DNS-1035"),
    ("name-too-long", make_job(**{"metadata.name": LONG}), "metadata.name", "63"),
    ("unknown-top-field", make_job(**{"spec.gpus": 8}), "spec.gpus", "unknown field"),
    ("missing-model", make_job(**{"spec.model": DELETE}), "spec.model", "required"),
    # model
    ("model-neither-source", make_job(**{"spec.model": {"revision": "main"}}), "spec.model", "exactly one"),
    ("model-both-sources", make_job(**{"spec.model.fromJob": {"name": "prev"}}), "spec.model", "exactly one"),
    ("model-bad-scheme", make_job(**{"spec.model.source": "s3://bucket/model"}), "spec.model.source", "pattern"),
    ("model-bad-artifact", make_job(**{"spec.model": {"fromJob": {"name": "a", "artifact": "best"}}}), "spec.model.fromJob.artifact", "latestCheckpoint"),
    ("model-unknown-field", make_job(**{"spec.model.token": "hf_abc"}), "spec.model.token", "unknown field"),
    ("model-attention", make_job(**{"spec.model.attention": "flash3"}), "spec.model.attention", "sdpa"),
    # dataset
    ("dataset-missing", make_job(**{"spec.dataset": DELETE}), "spec.dataset", "entrypoint"),
    ("dataset-no-sources", make_job(**{"spec.dataset.sources": []}), "spec.dataset.sources", "at least 1"),
    ("dataset-bad-format", make_job(**{"spec.dataset.sources[0].format": "csv"}), "spec.dataset.sources[0].format", "sharegpt"),
    ("dataset-two-templates", make_job(**{"spec.dataset.chatTemplate": {"builtin": "chatml", "jinja": "{{x}}"}}), "spec.dataset.chatTemplate", "at most one"),
    ("dataset-bad-builtin", make_job(**{"spec.dataset.chatTemplate": {"builtin": "vicuna"}}), "spec.dataset.chatTemplate.builtin", "llama-3"),
    ("dataset-bad-role", make_job(**{"spec.dataset.trainOnRoles": ["bot"]}), "spec.dataset.trainOnRoles[0]", "assistant"),
    ("dataset-eval-fraction", make_job(**{"spec.dataset.evalFraction": 0.7}), "spec.dataset.evalFraction", "0.5"),
    ("dataset-sample-limit", make_job(**{"spec.dataset.sources[0].sampleLimit": 0}), "spec.dataset.sources[0].sampleLimit", "greater than or equal to 1"),
    # method
    ("method-unknown", make_job(method="dora"), "spec.method.type", "qlora"),
    ("qlora-no-quantization", make_job(**{"spec.method.type": "qlora"}), "spec.method.quantization", "required"),
    ("lora-with-quantization", make_job(**{"spec.method.quantization": {"bits": 4}}), "spec.method.quantization", "qlora"),
    ("full-with-lora", make_job(method="full", **{"spec.method.lora": {"r": 8}}), "spec.method", "full fine-tuning"),
    ("quant-bits", make_job(method="qlora", **{"spec.method.quantization.bits": 3}), "spec.method.quantization.bits", "4"),
    ("lora-rank-zero", make_job(**{"spec.method.lora": {"r": 0}}), "spec.method.lora.r", "greater than or equal to 1"),
    ("full-adapter-output", make_job(method="full", **{"spec.output.formats": ["adapter"]}), "spec.output.formats", "merged"),
    # training
    ("lr-zero", make_job(**{"spec.training.learningRate": 0}), "spec.training.learningRate", "greater than 0"),
    ("lr-string", make_job(**{"spec.training.learningRate": "fast"}), "spec.training.learningRate", "number"),
    ("max-length-tiny", make_job(**{"spec.training.maxLength": 8}), "spec.training.maxLength", "16"),
    ("batch-both", make_job(**{"spec.training.globalBatchSize": 64, "spec.training.gradientAccumulationSteps": 4}), "spec.training.globalBatchSize", "not both"),
    ("batch-indivisible", make_job(gpus=8, **{"spec.training.globalBatchSize": 100, "spec.training.microBatchSize": 4}), "spec.training.globalBatchSize", "multiple"),
    ("optimizer-unknown", make_job(**{"spec.training.optimizer": "lion"}), "spec.training.optimizer", "adamw_8bit"),
    ("fp16-on-cpu", make_job(**{"spec.training.precision": "fp16"}), "spec.training.precision", "GPUs"),
    ("paged-on-cpu", make_job(**{"spec.training.optimizer": "paged_adamw_8bit"}), "spec.training.optimizer", "GPUs"),
    ("eval-without-data", make_job(**{"spec.training.evalSteps": 50}), "spec.training.evalSteps", "evalFraction"),
    # preference tuning
    ("dpo-without-pairs", make_job(**{"spec.training.objective": "dpo"}), "spec.training.objective", "preference"),
    ("pairs-without-dpo", make_job(**{"spec.dataset.sources[0].format": "hh-rlhf"}), "spec.dataset.sources", "objective: dpo"),
    ("dpo-settings-for-sft", make_job(**{"spec.training.dpo": {"beta": 0.2}}), "spec.training.dpo", "objective: dpo"),
    ("dpo-exo-no-smoothing", make_job(**{**DPO, "spec.training.dpo": {"lossType": "exo_pair"}}), "spec.training.dpo.labelSmoothing", "exo_pair"),
    ("dpo-custom-entrypoint", make_job(**{**DPO, "spec.entrypoint": {"module": "my.train"}}), "spec.entrypoint", "objective dpo"),
    ("dpo-loss-unknown", make_job(**{**DPO, "spec.training.dpo": {"lossType": "orpo"}}), "spec.training.dpo.lossType", "sigmoid"),
    ("dpo-beta-zero", make_job(**{**DPO, "spec.training.dpo": {"beta": 0}}), "spec.training.dpo.beta", "greater than 0"),
    ("dpo-smoothing-half", make_job(**{**DPO, "spec.training.dpo": {"labelSmoothing": 0.5}}), "spec.training.dpo.labelSmoothing", "below 0.5"),
    ("dpo-smoothing-over-half", make_job(**{**DPO, "spec.training.dpo": {"labelSmoothing": 0.6}}), "spec.training.dpo.labelSmoothing", "less than or equal to 0.5"),
    ("dpo-smoothing-whole-zero", make_job(**{**DPO, "spec.training.dpo": {"labelSmoothing": 0, "lossType": "exo_pair"}}), "spec.training.dpo.labelSmoothing", "exo_pair"),
    ("dpo-reference-unknown", make_job(**{**DPO, "spec.training.dpo": {"reference": "copy"}}), "spec.training.dpo.reference", "precomputed"),
    # distributed
    ("nodes-zero", make_job(nodes=0), "spec.distributed.nodes", "greater than or equal to 1"),
    ("strategy-unknown", make_job(**{"spec.distributed.strategy": "zero4"}), "spec.distributed.strategy", "fsdp"),
    ("fsdp-on-cpu", make_job(**{"spec.distributed.strategy": "fsdp"}), "spec.distributed.strategy", "GPUs"),
    ("offload-on-cpu", make_job(**{"spec.distributed.strategy": "deepspeed-zero3-offload"}), "spec.distributed.strategy", "GPUs"),
    ("procs-with-gpus", make_job(gpus=8, **{"spec.distributed.processesPerNode": 2}), "spec.distributed.processesPerNode", "CPU"),
    ("nccl-extra-env", make_job(gpus=8, **{"spec.distributed.nccl.extraEnv": {"CUDA_LAUNCH_BLOCKING": "1"}}), "spec.distributed.nccl.extraEnv", "NCCL_"),
    ("nccl-debug", make_job(**{"spec.distributed.nccl.debug": "LOUD"}), "spec.distributed.nccl.debug", "INFO"),
    ("fabric-unknown", make_job(gpus=8, **{"spec.distributed.fabric": "nvlink"}), "spec.distributed.fabric", "infiniband"),
    ("preflight-unknown", make_job(**{"spec.distributed.preflight": "strict"}), "spec.distributed.preflight", "warn"),
    # resources and placement
    ("extended-unqualified", make_job(**{"spec.resources.extendedResources": [{"name": "rdma", "count": 1}]}), "spec.resources.extendedResources[0].name", "pattern"),
    ("extended-kubernetes-io", make_job(**{"spec.resources.extendedResources": [{"name": "kubernetes.io/rdma", "count": 1}]}), "spec.resources.extendedResources", "kubernetes.io"),
    ("extended-subdomain-kubernetes-io", make_job(**{"spec.resources.extendedResources": [{"name": "node.kubernetes.io/rdma", "count": 1}]}), "spec.resources.extendedResources", "kubernetes.io"),
    ("extended-requests-prefix", make_job(**{"spec.resources.extendedResources": [{"name": "requests.example.com/rdma", "count": 1}]}), "spec.resources.extendedResources", "requests."),
    ("extended-long-domain", make_job(**{"spec.resources.extendedResources": [{"name": "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 54 + "/x", "count": 1}]}), "spec.resources.extendedResources", "244"),
    ("extended-zero", make_job(**{"spec.resources.extendedResources": [{"name": "rdma/ib", "count": 0}]}), "spec.resources.extendedResources[0].count", "greater than or equal to 1"),
    ("extended-fraction", make_job(**{"spec.resources.extendedResources": [{"name": "rdma/ib", "count": "500m"}]}), "spec.resources.extendedResources[0].count", "integer"),
    ("extended-twice", make_job(**{"spec.resources.extendedResources": [{"name": "rdma/ib", "count": 1}, {"name": "rdma/ib", "count": 2}]}), "spec.resources.extendedResources", "once"),
    ("extended-gpu", make_job(gpus=8, **{"spec.resources.extendedResources": [{"name": "nvidia.com/gpu", "count": 8}]}), "spec.resources.extendedResources", "GPU"),
    # network and security
    ("network-host-and-multus", make_job(**{"spec.network": {"hostNetwork": True, "secondaryNetworks": [{"name": "ib-a"}]}}), "spec.network.secondaryNetworks", "host network"),
    ("network-annotation-twice", make_job(**{"spec.network.secondaryNetworks": [{"name": "ib-a"}], "spec.podMetadata.annotations": {"k8s.v1.cni.cncf.io/networks": "ib-b"}}), "spec.network.secondaryNetworks", "podMetadata"),
    ("network-bad-name", make_job(**{"spec.network.secondaryNetworks": [{"name": "IB_A"}]}), "spec.network.secondaryNetworks[0].name", "pattern"),
    ("network-long-interface", make_job(**{"spec.network.secondaryNetworks": [{"name": "ib-a", "interface": "infiniband-rail-0"}]}), "spec.network.secondaryNetworks[0].interface", "15"),
    ("security-unknown", make_job(**{"spec.security.privileged": True}), "spec.security.privileged", "unknown field"),
    ("memory-quantity", make_job(**{"spec.resources.memory": "lots"}), "spec.resources.memory", "pattern"),
    ("gpu-resource-name", make_job(**{"spec.resources.gpuResourceName": "NVIDIA GPU"}), "spec.resources.gpuResourceName", "pattern"),
    ("tolerations-not-list", make_job(**{"spec.placement.tolerations": "gpu"}), "spec.placement.tolerations", "list"),
    # storage
    ("multinode-rwo", make_job(nodes=2, **{"spec.storage.accessMode": "ReadWriteOnce"}), "spec.storage.accessMode", "ReadWriteMany"),
    ("existing-with-size", make_job(**{"spec.storage": {"existingClaim": "data", "size": "1Ti"}}), "spec.storage.existingClaim", "as it is"),
    ("access-mode-unknown", make_job(**{"spec.storage.accessMode": "ReadOnlyMany"}), "spec.storage.accessMode", "ReadWriteMany"),
    # output and tracking
    ("output-format", make_job(**{"spec.output.formats": ["gguf"]}), "spec.output.formats[0]", "merged"),
    ("wandb-online-no-key", make_job(**{"spec.tracking.wandb": {"project": "p"}}), "spec.tracking.wandb.apiKeySecretRef", "Secret"),
    ("wandb-no-project", make_job(**{"spec.tracking.wandb": {"mode": "offline"}}), "spec.tracking.wandb.project", "required"),
    # entrypoint
    ("entrypoint-both", make_job(**{"spec.entrypoint": {"module": "a.b", "command": ["python"]}}), "spec.entrypoint", "exactly one"),
    ("entrypoint-bad-module", make_job(**{"spec.entrypoint": {"module": "my-trainer"}}), "spec.entrypoint.module", "pattern"),
    # run policy
    ("backoff-negative", make_job(**{"spec.runPolicy.backoffLimit": -1}), "spec.runPolicy.backoffLimit", "greater than or equal to 0"),
    ("gang-min-zero", make_job(**{"spec.runPolicy.gangScheduling": {"minAvailable": 0}}), "spec.runPolicy.gangScheduling.minAvailable", "greater than or equal to 1"),
    # env and secrets
    ("plaintext-token", make_job(**{"spec.env": [{"name": "HF_TOKEN", "value": "hf_secret"}]}), "spec.env", "Secret"),
    ("env-value-and-from", make_job(**{"spec.env": [{"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}), "spec.env", "exactly one"),
    ("grace-period", make_job(**{"spec.terminationGracePeriodSeconds": 5}), "spec.terminationGracePeriodSeconds", "30"),
]
# fmt: on


def test_the_table_is_broad() -> None:
    sections = {
        path.split(".")[1] if path.startswith("spec.") else path.split(".")[0]
        for _, _, path, _ in CASES
    }
    assert len(CASES) >= 30
    assert {
        "model",
        "dataset",
        "method",
        "training",
        "distributed",
        "resources",
        "placement",
        "storage",
        "output",
        "tracking",
        "entrypoint",
        "runPolicy",
        "env",
        "metadata",
        "network",
        "security",
    } <= sections


@pytest.mark.parametrize(("doc", "path", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_field(doc: dict[str, Any], path: str, word: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    problems = caught.value.problems
    matching = [p for p in problems if p.path == path]
    assert matching, f"expected a problem at {path}, got: {[str(p) for p in problems]}"
    assert any(word.lower() in p.message.lower() for p in matching), [str(p) for p in matching]


def test_valid_base_job_parses() -> None:
    job = parse_job(make_job())
    assert job.spec.method.type == "lora"
    assert job.spec.training.maxLength == 2048


def test_every_problem_is_reported_at_once() -> None:
    doc = make_job(**{"spec.training.maxLength": 8, "spec.distributed.nodes": 0, "spec.foo": 1})
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    paths = {p.path for p in caught.value.problems}
    assert {"spec.training.maxLength", "spec.distributed.nodes", "spec.foo"} <= paths


def test_batch_arithmetic_message_shows_the_numbers() -> None:
    doc = make_job(
        gpus=8, **{"spec.training.globalBatchSize": 100, "spec.training.microBatchSize": 4}
    )
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    (problem,) = caught.value.problems
    assert problem.message.endswith("(got 100; 4 × 8 = 32, try 96 or 128)")
