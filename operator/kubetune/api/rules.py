"""Cross-field rules of the FineTuneJob spec, each written once for each place it runs.

Every rule holds its CEL expression (the API server evaluates it through the CRD's
`x-kubernetes-validations`, so `kubectl apply` refuses bad jobs) beside its Python twin (so
`kubetune validate`, `kubetune run` and the operator refuse the same jobs offline). Tests run
the bad-input table through both and require the same verdict. Messages name the field and
the fix; `self` is the spec, as the API server sees it: defaulted, but with unset lists and
maps absent (so every rule over one starts with `has()`).

The rules live by area, one module each; `RULES` joins them in the CRD's order:

    objective_rules  what is trained on what: model, dataset, objectives, rewards
    training_rules   method and output formats, batch size, held-out evaluation
    cluster_rules    queue, GPUs, NCCL, extended resources, networks, workspace volume
    external_rules   W&B's key, a custom entrypoint, object storage
    pod_rules        what reaches the pods: env, paths, labels, tolerations
"""

from __future__ import annotations

from typing import Any

from kubetune.api.cluster_rules import CLUSTER_RULES
from kubetune.api.external_rules import EXTERNAL_RULES
from kubetune.api.objective_rules import OBJECTIVE_RULES
from kubetune.api.pod_rules import POD_RULES
from kubetune.api.rule import Rule
from kubetune.api.spec import FineTuneJobSpec
from kubetune.api.training_rules import TRAINING_RULES

RULES: tuple[Rule, ...] = (
    *OBJECTIVE_RULES,
    *TRAINING_RULES,
    *CLUSTER_RULES,
    *EXTERNAL_RULES,
    *POD_RULES,
)
"""Every spec rule, in the order of the CRD's `x-kubernetes-validations`."""


def broken_rules(spec: FineTuneJobSpec) -> list[Rule]:
    """The rules this spec breaks, in declaration order."""
    return [rule for rule in RULES if not rule.holds(spec)]


OBJECT_RULES: tuple[Rule, ...] = (
    Rule(
        "model.fromJob.name",
        "!has(self.spec.model.fromJob) || self.spec.model.fromJob.name != self.metadata.name",
        "names this FineTuneJob itself: a stage cannot start from its own output",
        lambda job: job.spec.model.fromJob is None or job.spec.model.fromJob.name != job.name,
    ),
)
"""Rules over the whole object (`self` is the FineTuneJob): they need metadata.name."""


def broken_object_rules(job: Any) -> list[Rule]:
    return [rule for rule in OBJECT_RULES if not rule.holds(job)]
