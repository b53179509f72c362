"""The spec's rules for what reaches the pods and other child objects, as Kubernetes will check
it there: environment variables (reserved names, credentials by reference only, no duplicates),
paths that stay inside their volume, gang size, the entrypoint's executable, label, annotation
and node-selector keys, and tolerations (as k8s.io/kubernetes' ValidateTolerations). Part of
`rules.RULES`; the regexes and limits themselves are in `kubetune_api.k8s_syntax`."""

from __future__ import annotations

import re
from collections.abc import Callable

from kubetune.api.rule import Rule
from kubetune.api.spec import FineTuneJobSpec
from kubetune_api.k8s_syntax import (
    is_label_value,
    is_qualified_name,
    label_value_cel,
    qualified_name_cel,
)

CREDENTIAL_NAME = r"(?i)(^|_)(TOKEN|KEY|APIKEY)$|SECRET|PASSWORD|PASSWD|CREDENTIAL"
"""Variable names that look like credentials: `*_TOKEN`, `*_KEY`, `*SECRET*`, `*PASSWORD*`, …"""
RESERVED_ENV = (
    # the training-operator v1.9.3 (pkg/controller.v1/pytorch/envvar.go, master.go, elastic.go)
    "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "PYTHONUNBUFFERED",
    # torchrun, for each process it starts
    "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
    "ROLE_WORLD_SIZE", "ROLE_NAME", "OMP_NUM_THREADS",
    # kubetune's renderer (render/pod.py; render/fabric.py: the fabric presets' FI_* variables
    # are not reserved, spec.env overrides them by design)
    "HF_HOME", "TOKENIZERS_PARALLELISM", "DS_ACCELERATOR", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
)  # fmt: skip
RESERVED_ENV_PREFIX = r"^(PET|KUBETUNE|TORCHELASTIC|NCCL)_"
"""PET_*: the training-operator's torchrun topology; KUBETUNE_*: kubetune's own; NCCL_*: set
through distributed.nccl."""
DOTDOT = r"(^|/)\.\.(/|$)"
"""A `..` path segment: the path may leave its volume."""
TOLERATION_OPERATORS = ("", "Equal", "Exists")
TAINT_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"


_QUALIFIED = (
    "keys must be qualified names: [prefix/]name, the name at most 63 letters, digits, '-', "
    "'_' and '.' starting and ending with a letter or digit, the optional prefix a DNS "
    "subdomain (e.g. example.com/team)"
)


def _qualified_keys(
    field: str, why: str, keys: Callable[[FineTuneJobSpec], dict[str, str]]
) -> Rule:
    """Every key of a map field is a qualified name (label, annotation, node-selector keys)."""
    path = f"self.{field}"
    return Rule(
        field,
        f"!has({path}) || {path}.all(k, " + qualified_name_cel("k") + ")",
        f"{_QUALIFIED} ({why})",
        lambda s: all(is_qualified_name(k) for k in keys(s)),
        lambda s: ", ".join(repr(k) for k in keys(s) if not is_qualified_name(k)),
    )


POD_RULES: tuple[Rule, ...] = (
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, has(e.value) != has(e.valueFrom))",
        "each variable takes exactly one of value and valueFrom",
        lambda s: all((e.value is None) != (e.valueFrom is None) for e in s.env),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, !e.name.matches('" + CREDENTIAL_NAME + "') "
        "|| has(e.valueFrom))",
        "a variable named like a credential (*_TOKEN, *_KEY, *SECRET*, *PASSWORD*, "
        "*CREDENTIAL*) must come from a Secret: valueFrom.secretKeyRef (or model.tokenSecretRef, "
        "tracking.wandb.apiKeySecretRef for HF_TOKEN and WANDB_API_KEY)",
        lambda s: all(not re.search(CREDENTIAL_NAME, e.name) or e.valueFrom for e in s.env),
        lambda s: ", ".join(e.name for e in s.env if re.search(CREDENTIAL_NAME, e.name)),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, !(e.name in " + _cel_list(RESERVED_ENV) + ") "
        "&& !e.name.matches('" + RESERVED_ENV_PREFIX + "'))",
        "reserved: the training-operator, torchrun or kubetune sets this variable (PET_*, "
        "MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, KUBETUNE_*, HF_HOME, …); "
        "NCCL_* settings go in distributed.nccl",
        lambda s: all(
            e.name not in RESERVED_ENV and not re.search(RESERVED_ENV_PREFIX, e.name) for e in s.env
        ),
        lambda s: ", ".join(
            e.name
            for e in s.env
            if e.name in RESERVED_ENV or re.search(RESERVED_ENV_PREFIX, e.name)
        ),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, self.env.exists_one(o, o.name == e.name))",
        "name each variable once",
        lambda s: len({e.name for e in s.env}) == len(s.env),
    ),
    Rule(
        "output.path",
        "!has(self.output.path) || (!self.output.path.startsWith('/') "
        "&& !self.output.path.matches(r'" + DOTDOT + "'))",
        "must stay inside the workspace volume: a relative path without '..' segments, "
        "e.g. outputs/run-1",
        lambda s: (
            s.output.path is None
            or (not s.output.path.startswith("/") and not re.search(DOTDOT, s.output.path))
        ),
    ),
    Rule(
        "model.source",
        "!has(self.model.source) || !self.model.source.matches(r'" + DOTDOT + "')",
        "must stay inside its volume (the workspace, or the claim of a pvc:// source): "
        "remove the '..' segments",
        lambda s: s.model.source is None or not re.search(DOTDOT, s.model.source),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(d, !d.source.matches(r'" + DOTDOT + "'))",
        "each source must stay inside its volume (the workspace, or the claim of a pvc:// "
        "source): remove the '..' segments",
        lambda s: (
            s.dataset is None or not any(re.search(DOTDOT, d.source) for d in s.dataset.sources)
        ),
    ),
    Rule(
        "runPolicy.gangScheduling.minAvailable",
        "!has(self.runPolicy.gangScheduling) || !has(self.runPolicy.gangScheduling.minAvailable) "
        "|| self.runPolicy.gangScheduling.minAvailable <= self.distributed.nodes",
        "at most distributed.nodes (one pod per node): more pods than the job has never schedule",
        lambda s: (
            s.runPolicy.gangScheduling is None
            or s.runPolicy.gangScheduling.minAvailable is None
            or s.runPolicy.gangScheduling.minAvailable <= s.distributed.nodes
        ),
    ),
    Rule(
        "entrypoint.command",
        "!has(self.entrypoint) || !has(self.entrypoint.command) "
        r"|| self.entrypoint.command[0].matches(r'\S')",
        "the first item is the executable and must not be empty, e.g. [python, train.py]",
        lambda s: (
            s.entrypoint is None
            or s.entrypoint.command is None
            or bool(re.search(r"\S", s.entrypoint.command[0]))
        ),
    ),
    _qualified_keys(
        "podMetadata.labels", "as Kubernetes requires of label keys", lambda s: s.podMetadata.labels
    ),
    _qualified_keys(
        "podMetadata.annotations",
        "as Kubernetes requires of annotation keys",
        lambda s: s.podMetadata.annotations,
    ),
    _qualified_keys(
        "placement.nodeSelector",
        "node selector keys are node label keys",
        lambda s: s.placement.nodeSelector,
    ),
    # Tolerations as Kubernetes' ValidateTolerations checks them (k8s.io/kubernetes
    # pkg/apis/core/validation/validation.go); the schema (corev1.json) checks their types.
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.key) || t.key == '' || (" + qualified_name_cel("t.key") + "))",
        "a toleration's key is a taint key: " + _QUALIFIED,
        lambda s: all(
            not t.get("key") or is_qualified_name(t["key"]) for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "(has(t.key) && t.key != '') || (has(t.operator) && t.operator == 'Exists'))",
        "a toleration without a key must have operator Exists (it then tolerates every taint)",
        lambda s: all(
            t.get("key") or t.get("operator") == "Exists" for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.operator) || t.operator in " + _cel_list(TOLERATION_OPERATORS) + ")",
        "a toleration's operator is Equal or Exists",
        lambda s: all(
            t.get("operator", "") in TOLERATION_OPERATORS for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.effect) || t.effect in " + _cel_list(TAINT_EFFECTS) + ")",
        "a toleration's effect is NoSchedule, PreferNoSchedule or NoExecute (or empty: all)",
        lambda s: all(t.get("effect", "") in TAINT_EFFECTS for t in s.placement.tolerations),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.tolerationSeconds) || (has(t.effect) && t.effect == 'NoExecute'))",
        "tolerationSeconds needs effect NoExecute",
        lambda s: all(
            "tolerationSeconds" not in t or t.get("effect") == "NoExecute"
            for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, !has(t.value) "
        "|| (has(t.operator) && t.operator == 'Exists' ? t.value == '' : ("
        + label_value_cel("t.value")
        + ")))",
        "a toleration's value is empty with operator Exists, else a label value (at most 63 "
        "letters, digits, '-', '_' and '.')",
        lambda s: all(
            "value" not in t
            or (t["value"] == "" if t.get("operator") == "Exists" else is_label_value(t["value"]))
            for t in s.placement.tolerations
        ),
    ),
)
