"""What the API server refuses reaches the FineTuneJob, and nothing keeps retrying it.

Real kube-apiserver and training-operator; the refusals come from a ValidatingAdmissionPolicy
of the test's own (Kubernetes' built-in CEL admission), bound to one job's objects by their
`kubetune.io/job` label: the same path any admission rule a cluster runs (OPA Gatekeeper,
Kyverno, Pod Security, a webhook) takes. What `kubetune validate` and the CRD refuse never gets
this far; this covers what no rule of ours foresaw.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubetune.render.metadata import JOB_LABEL
from tests.support.kube import Kube, KubectlError, condition, eventually
from tests.support.operator import phase_is, status, tiny

ADMISSION = "admissionregistration.k8s.io/v1"


class Deny:
    """A ValidatingAdmissionPolicy and its binding that refuse creating `resource` objects
    labelled as `job`'s, in the test's namespace."""

    def __init__(self, kube: Kube, resource: str, job: str) -> None:
        self.kube = kube
        self.name = f"kubetune-test-{uuid.uuid4().hex[:8]}"
        self.message = f"kubetune test policy: no {resource} for {job}"
        policy = {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": self.name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": [resource],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": self.message}],
            },
        }
        binding = {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": self.name},
            "spec": {
                "policyName": self.name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": kube.namespace}
                    },
                    "objectSelector": {"matchLabels": {JOB_LABEL: job}},
                },
            },
        }
        kube.apply(policy, binding)
        probe: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap" if resource == "configmaps" else "Pod",
            "metadata": {"name": "probe", "labels": {JOB_LABEL: job}},
        }
        if resource == "pods":
            probe["spec"] = {"containers": [{"name": "c", "image": "x"}]}
        eventually(lambda: self._denies(probe), timeout=30, what="the policy to take effect")

    def _denies(self, probe: dict[str, Any]) -> bool:
        try:
            self.kube.apply(probe, dry_run=True)
            return False
        except KubectlError as err:
            return self.message in err.stderr

    def remove(self) -> None:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            self.kube.run("delete", kind, self.name, "--ignore-not-found", namespaced=False)


@pytest.fixture
def deny(kube: Kube) -> Iterator[Any]:
    made: list[Deny] = []

    def make(resource: str, job: str) -> Deny:
        made.append(Deny(kube, resource, job))
        return made[-1]

    yield make
    for policy in made:
        policy.remove()


def failed_condition(kube: Kube, name: str) -> dict[str, Any]:
    done = eventually(lambda: phase_is(kube, name, "Failed"), timeout=90, what=f"{name} to fail")
    return next(c for c in done["conditions"] if c["type"] == "Failed")


def create_failures(kube: Kube, pytorchjob: str) -> list[dict[str, Any]]:
    """The training-operator's Events of failing to create the PyTorchJob's pods."""
    return [
        e
        for e in kube.get("events")
        if e["involvedObject"].get("name") == pytorchjob and e["reason"] == "FailedCreatePod"
    ]


@pytest.mark.usefixtures("operator")
def test_a_refused_child_fails_the_job_with_the_api_servers_message(kube: Kube, deny: Any) -> None:
    policy = deny("configmaps", "refused-child")
    kube.apply(tiny("refused-child"))
    failed = failed_condition(kube, "refused-child")
    assert failed["reason"] == "ChildRejected"
    assert "ConfigMap/refused-child-trainer-config" in failed["message"]
    assert policy.message in failed["message"]
    # One reconcile creates the children in order, the PyTorchJob last, and only then writes the
    # status: the Failed status seen above was written after the creation stopped at the
    # refused ConfigMap. A failed job is finished, so no later reconcile creates anything.
    assert not kube.exists("pytorchjob", "refused-child")


@pytest.mark.usefixtures("operator")
def test_pods_the_api_server_refuses_fail_the_job_and_stop_the_retries(
    kube: Kube, deny: Any
) -> None:
    policy = deny("pods", "refused-pods")
    kube.apply(tiny("refused-pods"))
    failed = failed_condition(kube, "refused-pods")
    assert failed["reason"] == "PodsRejected"
    assert policy.message in failed["message"] and "training pod" in failed["message"]
    # The PyTorchJob is stopped: the training-operator's attempts end (they were every few
    # seconds, backing off, for as long as it ran). Its own Suspended condition says it has
    # taken the suspension in.
    suspended = eventually(
        lambda: condition(kube.get("pytorchjob", "refused-pods"), "Suspended"),
        timeout=60,
        what="the training-operator to report the PyTorchJob suspended",
    )
    # A later job's pods, created by the same training-operator, show it has gone on working
    # since: the refused job's attempts have not resumed meanwhile. Each Event's lastTimestamp
    # is when the training-operator last made that attempt; its count may be written later
    # (client-go's recorder patches repeats from a queue, behind under load), so the times,
    # not the counts, say whether an attempt came after the suspension (1 s: both are whole
    # seconds).
    kube.apply(tiny("refused-pods-canary"))
    eventually(
        lambda: kube.get("pods", selector=f"{JOB_LABEL}=refused-pods-canary"),
        timeout=90,
        what="the training-operator to create a later job's pods",
    )
    attempts = create_failures(kube, "refused-pods")
    assert attempts
    stopped = datetime.datetime.fromisoformat(suspended["lastTransitionTime"]) + datetime.timedelta(
        seconds=1
    )
    later = [
        e["lastTimestamp"]
        for e in attempts
        if datetime.datetime.fromisoformat(e["lastTimestamp"]) > stopped
    ]
    assert not later, (suspended["lastTransitionTime"], later)
    assert status(kube, "refused-pods")["phase"] == "Failed"


@pytest.mark.usefixtures("operator")
def test_stages_in_a_cycle_fail_naming_the_cycle(kube: Kube) -> None:
    kube.apply(
        tiny("stage-a", **{"spec.model": {"fromJob": {"name": "stage-b"}}}),
        tiny("stage-b", **{"spec.model": {"fromJob": {"name": "stage-a"}}}),
    )
    for name, cycle in (
        ("stage-a", "stage-a → stage-b → stage-a"),
        ("stage-b", "stage-b → stage-a → stage-b"),
    ):
        failed = failed_condition(kube, name)
        assert failed["reason"] == "DependencyCycle" and cycle in failed["message"], failed
    assert kube.get("pytorchjobs") == []
