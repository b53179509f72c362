"""The table of bad FineTuneJobs, spread over every section: (id, document, the field path the
first problem must name, a word its message must contain). The API tests parse each one, the CEL
and Kubernetes-syntax tests and the real API server (tests/cluster) refuse the same table."""

from __future__ import annotations

from typing import Any

from tests.support.factories import DELETE, make_job

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
    ("validation-and-fraction", make_job(**{"spec.dataset.evalFraction": 0.1, "spec.dataset.validation": {"source": "/data/val.jsonl"}}), "spec.dataset.validation", "not both"),
    ("validation-bad-format", make_job(**{"spec.dataset.validation": {"source": "/data/val.jsonl", "format": "csv"}}), "spec.dataset.validation.format", "sharegpt"),
    # evaluation
    ("toolcalls-without-data", make_job(**{"spec.evaluation.toolCalls": True}), "spec.evaluation.toolCalls", "held-out"),
    ("baseline-without-data", make_job(**{"spec.evaluation.baseline": True}), "spec.evaluation.baseline", "held-out"),
    ("eval-max-new-tokens", make_job(**{"spec.evaluation.maxNewTokens": 0}), "spec.evaluation.maxNewTokens", "greater than or equal to 1"),
    ("eval-unknown-field", make_job(**{"spec.evaluation.metrics": ["bleu"]}), "spec.evaluation.metrics", "unknown field"),
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
    ("network-bad-name", make_job(**{"spec.network.secondaryNetworks": [{"name": "IB_A"}]}), "spec.network.secondaryNetworks[0].name", "DNS-1123"),
    ("network-long-interface", make_job(**{"spec.network.secondaryNetworks": [{"name": "ib-a", "interface": "infiniband-rail-0"}]}), "spec.network.secondaryNetworks[0].interface", "15"),
    ("security-unknown", make_job(**{"spec.security.privileged": True}), "spec.security.privileged", "unknown field"),
    ("memory-quantity", make_job(**{"spec.resources.memory": "lots"}), "spec.resources.memory", "quantity"),
    ("gpu-resource-name", make_job(**{"spec.resources.gpuResourceName": "NVIDIA GPU"}), "spec.resources.gpuResourceName", "pattern"),
    ("tolerations-not-list", make_job(**{"spec.placement.tolerations": "gpu"}), "spec.placement.tolerations", "list"),
    # storage
    ("multinode-rwo", make_job(nodes=2, **{"spec.storage.accessMode": "ReadWriteOnce"}), "spec.storage.accessMode", "ReadWriteMany"),
    ("existing-with-size", make_job(**{"spec.storage": {"existingClaim": "data", "size": "1Ti"}}), "spec.storage.existingClaim", "as it is"),
    ("access-mode-unknown", make_job(**{"spec.storage.accessMode": "ReadOnlyMany"}), "spec.storage.accessMode", "ReadWriteMany"),
    # output and tracking
    ("output-format", make_job(**{"spec.output.formats": ["onnx"]}), "spec.output.formats[0]", "gguf"),
    ("gguf-without-merged", make_job(**{"spec.output.formats": ["adapter", "gguf"]}), "spec.output.formats", "add merged"),
    ("gguf-tiny-llama", make_job(**{"spec.model.source": "builtin://tiny-llama", "spec.output.formats": ["merged", "gguf"]}), "spec.output.formats", "llama.cpp"),
    ("gguf-section-without-format", make_job(**{"spec.output.gguf": {"quantizations": ["q4_k_m"]}}), "spec.output.gguf", "add gguf"),
    ("gguf-imatrix-quantization", make_job(**{"spec.output.formats": ["merged", "gguf"], "spec.output.gguf": {"quantizations": ["iq2_xxs"]}}), "spec.output.gguf.quantizations[0]", "q4_k_m"),
    ("gguf-no-quantizations", make_job(**{"spec.output.formats": ["merged", "gguf"], "spec.output.gguf": {"quantizations": []}}), "spec.output.gguf.quantizations", "at least 1"),
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

# Kubernetes' own rules for what reaches a child object, and the classes of issue 13. The bad
# values come from Kubernetes' tests, not from kubetune's code: apimachinery v0.35
# pkg/api/validate/content/{dns,kube}_test.go (names, label keys and values), apimachinery
# pkg/api/resource quantities, distribution/reference v0.6.0 reference_test.go (images),
# k8s.io/kubernetes pkg/apis/core/validation ValidateTolerations, and the core/v1 OpenAPI schema.
SECRET = {"secretKeyRef": {"name": "creds", "key": "value"}}
TOL = "spec.placement.tolerations"
K8S_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # quantities: sign, zero, suffixes Kubernetes does not know
    ("memory-negative", make_job(**{"spec.resources.memory": "-8Gi"}), "spec.resources.memory", "above zero"),
    ("memory-zero", make_job(**{"spec.resources.memory": "0Gi"}), "spec.resources.memory", "above zero"),
    ("memory-int-zero", make_job(**{"spec.resources.memory": 0}), "spec.resources.memory", "greater than or equal to 1"),
    ("cpu-int-negative", make_job(**{"spec.resources.cpu": -2}), "spec.resources.cpu", "greater than or equal to 1"),
    ("cpu-zero-milli", make_job(**{"spec.resources.cpu": "0m"}), "spec.resources.cpu", "above zero"),
    ("cpu-zero-decimal", make_job(**{"spec.resources.cpu": "0.000"}), "spec.resources.cpu", "above zero"),
    ("cpu-two-points", make_job(**{"spec.resources.cpu": "1.5.2"}), "spec.resources.cpu", "quantity"),
    ("memory-gb-suffix", make_job(**{"spec.resources.memory": "8GB"}), "spec.resources.memory", "quantity"),
    ("memory-space", make_job(**{"spec.resources.memory": "8 Gi"}), "spec.resources.memory", "quantity"),
    ("memory-lowercase-suffix", make_job(**{"spec.resources.memory": "8gi"}), "spec.resources.memory", "quantity"),
    ("shm-negative", make_job(**{"spec.resources.sharedMemory": "-1Gi"}), "spec.resources.sharedMemory", "above zero"),
    ("storage-size-negative", make_job(**{"spec.storage.size": "-1Ti"}), "spec.storage.size", "above zero"),
    ("storage-size-zero", make_job(**{"spec.storage.size": "0"}), "spec.storage.size", "above zero"),
    # object names Kubernetes checks as DNS-1123 subdomains
    ("claim-uppercase", make_job(**{"spec.storage.existingClaim": "Data"}), "spec.storage.existingClaim", "DNS-1123"),
    ("claim-underscore", make_job(**{"spec.storage.existingClaim": "a_b"}), "spec.storage.existingClaim", "DNS-1123"),
    ("claim-double-dot", make_job(**{"spec.storage.existingClaim": "a..b"}), "spec.storage.existingClaim", "DNS-1123"),
    ("claim-too-long", make_job(**{"spec.storage.existingClaim": "a" * 254}), "spec.storage.existingClaim", "253"),
    ("storage-class-space", make_job(**{"spec.storage.storageClassName": "fast ssd"}), "spec.storage.storageClassName", "DNS-1123"),
    ("storage-class-trailing-dot", make_job(**{"spec.storage.storageClassName": "fast."}), "spec.storage.storageClassName", "DNS-1123"),
    ("priority-class-uppercase", make_job(**{"spec.placement.priorityClassName": "High"}), "spec.placement.priorityClassName", "DNS-1123"),
    ("priority-class-colon", make_job(**{"spec.placement.priorityClassName": "a:b"}), "spec.placement.priorityClassName", "DNS-1123"),
    ("scheduler-name-uppercase", make_job(**{"spec.placement.schedulerName": "Volcano"}), "spec.placement.schedulerName", "DNS-1123"),
    ("pull-secret-underscore", make_job(**{"spec.imagePullSecrets": ["regcred_1"]}), "spec.imagePullSecrets[0]", "DNS-1123"),
    ("pull-secret-empty", make_job(**{"spec.imagePullSecrets": [""]}), "spec.imagePullSecrets[0]", "DNS-1123"),
    ("gang-queue-space", make_job(**{"spec.runPolicy.gangScheduling": {"queue": "Team A"}}), "spec.runPolicy.gangScheduling.queue", "DNS-1123"),
    ("gang-priority-dots", make_job(**{"spec.runPolicy.gangScheduling": {"priorityClass": "a..b"}}), "spec.runPolicy.gangScheduling.priorityClass", "DNS-1123"),
    ("token-secret-name", make_job(**{"spec.model.tokenSecretRef": {"name": "HF Token", "key": "token"}}), "spec.model.tokenSecretRef.name", "DNS-1123"),
    ("token-secret-key", make_job(**{"spec.model.tokenSecretRef": {"name": "hf", "key": "my key"}}), "spec.model.tokenSecretRef.key", "Secret key"),
    ("dataset-secret-name", make_job(**{"spec.dataset.sources[0].tokenSecretRef": {"name": "-hf", "key": "token"}}), "spec.dataset.sources[0].tokenSecretRef.name", "DNS-1123"),
    ("wandb-secret-name", make_job(**{"spec.tracking.wandb": {"project": "p", "apiKeySecretRef": {"name": "_wandb", "key": "k"}}}), "spec.tracking.wandb.apiKeySecretRef.name", "DNS-1123"),
    ("env-secret-name", make_job(**{"spec.env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "S", "key": "k"}}}]}), "spec.env[0].valueFrom.secretKeyRef.name", "DNS-1123"),
    ("from-job-claim", make_job(**{"spec.model": {"fromJob": {"name": "stage-1", "claimName": "Shared_WS"}}}), "spec.model.fromJob.claimName", "DNS-1123"),
    ("from-job-uppercase", make_job(**{"spec.model": {"fromJob": {"name": "Stage1"}}}), "spec.model.fromJob.name", "DNS-1035"),
    ("from-job-digit", make_job(**{"spec.model": {"fromJob": {"name": "1stage"}}}), "spec.model.fromJob.name", "DNS-1035"),
    # label values (IsLabelValue)
    ("label-value-too-long", make_job(**{"spec.podMetadata.labels": {"team": LONG}}), "spec.podMetadata.labels.team", "63"),
    ("label-value-space", make_job(**{"spec.podMetadata.labels": {"team": "team a"}}), "spec.podMetadata.labels.team", "label value"),
    ("label-value-leading-dash", make_job(**{"spec.podMetadata.labels": {"team": "-starts-with-dash"}}), "spec.podMetadata.labels.team", "label value"),
    ("label-value-trailing-dot", make_job(**{"spec.podMetadata.labels": {"team": "ends.with.dot."}}), "spec.podMetadata.labels.team", "label value"),
    ("label-value-backslash", make_job(**{"spec.podMetadata.labels": {"team": "\\backslashes\\are\\bad"}}), "spec.podMetadata.labels.team", "label value"),
    # label and annotation keys (IsLabelKey, a.k.a. IsQualifiedName)
    ("label-key-space", make_job(**{"spec.podMetadata.labels": {"my label": "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-name-too-long", make_job(**{"spec.podMetadata.labels": {LONG: "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-two-slashes", make_job(**{"spec.podMetadata.labels": {"a/b/c": "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-empty-prefix", make_job(**{"spec.podMetadata.labels": {"/name": "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-empty-name", make_job(**{"spec.podMetadata.labels": {"example.com/": "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-uppercase-prefix", make_job(**{"spec.podMetadata.labels": {"Example.com/team": "x"}}), "spec.podMetadata.labels", "qualified"),
    ("label-key-prefix-too-long", make_job(**{"spec.podMetadata.labels": {".".join(c * 63 for c in "abcd") + "/x": "y"}}), "spec.podMetadata.labels", "qualified"),
    ("annotation-key-space", make_job(**{"spec.podMetadata.annotations": {"my annotation": "x"}}), "spec.podMetadata.annotations", "qualified"),
    ("annotation-key-bad-prefix", make_job(**{"spec.podMetadata.annotations": {"example..com/a": "x"}}), "spec.podMetadata.annotations", "qualified"),
    ("annotation-value-too-big", make_job(**{"spec.podMetadata.annotations": {"a": "x" * 3501}}), "spec.podMetadata.annotations.a", "3500"),
    ("node-selector-key-space", make_job(**{"spec.placement.nodeSelector": {"gpu type": "a100"}}), "spec.placement.nodeSelector", "qualified"),
    ("node-selector-value-space", make_job(**{"spec.placement.nodeSelector": {"gpu": "A100 80GB"}}), "spec.placement.nodeSelector.gpu", "label value"),
    ("node-selector-value-long", make_job(**{"spec.placement.nodeSelector": {"gpu": LONG}}), "spec.placement.nodeSelector.gpu", "63"),
    ("queue-name-space", make_job(**{"spec.scheduling.queue": "team a"}), "spec.scheduling.queue", "label value"),
    ("queue-name-too-long", make_job(**{"spec.scheduling.queue": "q" * 64}), "spec.scheduling.queue", "63"),
    ("queue-name-empty", make_job(**{"spec.scheduling.queue": ""}), "spec.scheduling.queue", "at least 1"),
    ("priority-class-space", make_job(**{"spec.scheduling": {"queue": "q", "priorityClass": "high prio"}}), "spec.scheduling.priorityClass", "label value"),
    ("priority-without-queue", make_job(**{"spec.scheduling.priorityClass": "high"}), "spec.scheduling.priorityClass", "needs a queue"),
    # image references (distribution/reference)
    ("image-space-in-tag", make_job(**{"spec.image": "ghcr.io/org/trainer: 1.0"}), "spec.image", "image reference"),
    ("image-leading-space", make_job(**{"spec.image": " ghcr.io/org/trainer:1.0"}), "spec.image", "image reference"),
    ("image-uppercase", make_job(**{"spec.image": "Uppercase:tag"}), "spec.image", "image reference"),
    ("image-just-tag", make_job(**{"spec.image": ":justtag"}), "spec.image", "image reference"),
    ("image-bad-chars", make_job(**{"spec.image": "aa/asdf$$^/aa"}), "spec.image", "image reference"),
    ("image-empty", make_job(**{"spec.image": ""}), "spec.image", "image reference"),
    ("image-ipv6-zone", make_job(**{"spec.image": "[fe80::1%eth0]:5000/repo"}), "spec.image", "image reference"),
    ("image-short-digest", make_job(**{"spec.image": "repo@sha256:" + "f" * 31}), "spec.image", "image reference"),
    ("image-tag-too-long", make_job(**{"spec.image": "repo:" + "a" * 129}), "spec.image", "image reference"),
    # core/v1 Toleration: the OpenAPI schema, then ValidateTolerations
    ("toleration-unknown-field", make_job(**{TOL: [{"key": "gpu", "operator": "Exists", "effekt": "NoSchedule"}]}), f"{TOL}[0]", "unknown field"),
    ("toleration-seconds-string", make_job(**{TOL: [{"key": "gpu", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "soon"}]}), f"{TOL}[0]", "integer"),
    ("toleration-key-number", make_job(**{TOL: [{"key": 5, "operator": "Exists"}]}), f"{TOL}[0]", "string"),
    ("toleration-not-object", make_job(**{TOL: ["gpu"]}), f"{TOL}[0]", "dictionary"),
    ("toleration-operator-in", make_job(**{TOL: [{"key": "gpu", "operator": "In", "value": "x"}]}), TOL, "Equal or Exists"),
    ("toleration-no-key-equal", make_job(**{TOL: [{"operator": "Equal", "value": "x"}]}), TOL, "without a key"),
    ("toleration-exists-with-value", make_job(**{TOL: [{"key": "gpu", "operator": "Exists", "value": "a100"}]}), TOL, "empty"),
    ("toleration-seconds-noschedule", make_job(**{TOL: [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]}), TOL, "NoExecute"),
    ("toleration-bad-effect", make_job(**{TOL: [{"key": "gpu", "operator": "Exists", "effect": "NoRun"}]}), TOL, "PreferNoSchedule"),
    ("toleration-bad-key", make_job(**{TOL: [{"key": "nvidia.com/gpu/x", "operator": "Exists"}]}), TOL, "taint key"),
    ("toleration-value-space", make_job(**{TOL: [{"key": "gpu", "operator": "Equal", "value": "a 100"}]}), TOL, "label value"),
    # core/v1 Affinity: the OpenAPI schema
    ("affinity-misspelt", make_job(**{"spec.placement.affinity": {"nodeAfinity": {}}}), "spec.placement.affinity", "unknown field"),
    ("affinity-terms-not-list", make_job(**{"spec.placement.affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "gpu"}}}}), "spec.placement.affinity", "array"),
    ("affinity-missing-topology-key", make_job(**{"spec.placement.affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}}), "spec.placement.affinity", "required"),
    ("affinity-weight-string", make_job(**{"spec.placement.affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": "high", "preference": {}}]}}}), "spec.placement.affinity", "integer"),
    ("affinity-weight-above-100", make_job(**{"spec.placement.affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 101, "podAffinityTerm": {"topologyKey": "zone"}}]}}}), "spec.placement.affinity", "1-100"),
    ("affinity-weight-zero", make_job(**{"spec.placement.affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}}}), "spec.placement.affinity", "1-100"),
    ("affinity-node-operator", make_job(**{"spec.placement.affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Equals", "values": ["a100"]}]}]}}}}), "spec.placement.affinity", "must be one of"),
    ("affinity-selector-gt", make_job(**{"spec.placement.affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}}]}}}), "spec.placement.affinity", "must be one of"),
    ("affinity-empty-topology-key", make_job(**{"spec.placement.affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}}), "spec.placement.affinity", "1 to 317"),
    ("affinity-not-object", make_job(**{"spec.placement.affinity": "gpu"}), "spec.placement.affinity", "dictionary"),
    # paths stay inside their volume
    ("output-path-up", make_job(**{"spec.output.path": "../../etc"}), "spec.output.path", "inside the workspace"),
    ("output-path-absolute", make_job(**{"spec.output.path": "/etc/kubetune"}), "spec.output.path", "inside the workspace"),
    ("output-path-up-midway", make_job(**{"spec.output.path": "outputs/../../x"}), "spec.output.path", "inside the workspace"),
    ("output-path-empty", make_job(**{"spec.output.path": ""}), "spec.output.path", "at least 1"),
    ("model-path-up", make_job(**{"spec.model.source": "../models/llama"}), "spec.model.source", "inside its volume"),
    ("model-pvc-up", make_job(**{"spec.model.source": "pvc://models/../other-claim/llama"}), "spec.model.source", "inside its volume"),
    ("dataset-path-up", make_job(**{"spec.dataset.sources[0].source": "../../data.jsonl"}), "spec.dataset.sources", "inside its volume"),
    ("dataset-pvc-up", make_job(**{"spec.dataset.sources[0].source": "pvc://team-data/a/../../b.jsonl"}), "spec.dataset.sources", "inside its volume"),
    # references between jobs
    ("from-job-itself", make_job(**{"metadata.name": "stage", "spec.model": {"fromJob": {"name": "stage"}}}), "spec.model.fromJob.name", "itself"),
    # environment: reserved names, credentials, duplicates
    ("env-pet-nnodes", make_job(**{"spec.env": [{"name": "PET_NNODES", "value": "4"}]}), "spec.env", "reserved"),
    ("env-master-addr", make_job(**{"spec.env": [{"name": "MASTER_ADDR", "value": "10.0.0.1"}]}), "spec.env", "reserved"),
    ("env-master-port", make_job(**{"spec.env": [{"name": "MASTER_PORT", "value": "29500"}]}), "spec.env", "reserved"),
    ("env-world-size", make_job(**{"spec.env": [{"name": "WORLD_SIZE", "value": "8"}]}), "spec.env", "reserved"),
    ("env-rank", make_job(**{"spec.env": [{"name": "RANK", "value": "0"}]}), "spec.env", "reserved"),
    ("env-local-rank", make_job(**{"spec.env": [{"name": "LOCAL_RANK", "value": "0"}]}), "spec.env", "reserved"),
    ("env-kubetune-config", make_job(**{"spec.env": [{"name": "KUBETUNE_CONFIG", "value": "/x.yaml"}]}), "spec.env", "reserved"),
    ("env-hf-home", make_job(**{"spec.env": [{"name": "HF_HOME", "value": "/tmp/hf"}]}), "spec.env", "reserved"),
    ("env-nccl-outside-nccl", make_job(**{"spec.env": [{"name": "NCCL_DEBUG", "value": "INFO"}]}), "spec.env", "distributed.nccl"),
    ("env-aws-secret", make_job(**{"spec.env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}]}), "spec.env", "Secret"),
    ("env-openai-key", make_job(**{"spec.env": [{"name": "OPENAI_API_KEY", "value": "sk-abc"}]}), "spec.env", "Secret"),
    ("env-db-password", make_job(**{"spec.env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}), "spec.env", "Secret"),
    ("env-github-token", make_job(**{"spec.env": [{"name": "GITHUB_TOKEN", "value": "ghp_abc"}]}), "spec.env", "Secret"),
    ("env-lowercase-token", make_job(**{"spec.env": [{"name": "hf_token", "value": "hf_abc"}]}), "spec.env", "Secret"),
    ("env-registry-credentials", make_job(**{"spec.env": [{"name": "REGISTRY_CREDENTIALS", "value": "u:p"}]}), "spec.env", "Secret"),
    ("env-duplicate", make_job(**{"spec.env": [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"}]}), "spec.env", "once"),
    ("env-duplicate-secret", make_job(**{"spec.env": [{"name": "S3_KEY", "valueFrom": SECRET}, {"name": "S3_KEY", "valueFrom": SECRET}]}), "spec.env", "once"),
    ("env-name-digit", make_job(**{"spec.env": [{"name": "1X", "value": "a"}]}), "spec.env[0].name", "pattern"),
    # gang scheduling, entrypoint, renames
    ("gang-min-above-pods", make_job(nodes=2, **{"spec.runPolicy.gangScheduling": {"minAvailable": 3}}), "spec.runPolicy.gangScheduling.minAvailable", "at most"),
    ("gang-min-single-node", make_job(**{"spec.runPolicy.gangScheduling": {"minAvailable": 2}}), "spec.runPolicy.gangScheduling.minAvailable", "at most"),
    ("entrypoint-empty-executable", make_job(**{"spec.entrypoint": {"command": ["", "train.py"]}}), "spec.entrypoint.command", "executable"),
    ("entrypoint-blank-executable", make_job(**{"spec.entrypoint": {"command": ["  "]}}), "spec.entrypoint.command", "executable"),
    ("pull-policy-unknown", make_job(**{"spec.imagePullPolicy": "Sometimes"}), "spec.imagePullPolicy", "IfNotPresent"),
    ("pull-secret-not-a-name", make_job(**{"spec.imagePullSecrets": ["Bad_Name"]}), "spec.imagePullSecrets[0]", "DNS-1123"),
    ("rename-to-empty", make_job(**{"spec.dataset.sources[0].fields": {"messages": ""}}), "spec.dataset.sources[0].fields.messages", "at least 1"),
]
# fmt: on
CASES += K8S_CASES
