"""The condition types and reasons of a FineTuneJob's status: part of its API.

Kubernetes' API conventions (sig-architecture, "Typical status properties") ask for a top-level
condition that summarizes the others, `Ready` for long-running objects and `Succeeded` for
bounded-execution ones, set from the first time a controller visits the object, Unknown while it
cannot tell; conditions follow `metav1.Condition`: a CamelCase reason that is never empty, and a
`lastTransitionTime` that moves only when the status flips (apimachinery's
`meta.SetStatusCondition`, which `runtime/conditions.set_condition` follows).

A FineTuneJob carries, from its first reconcile on:
- `Succeeded`: Unknown until training ends, then True, or False when the job failed;
- `Failed`: True once it failed, else False;
- `Suspended`: True while suspended (`spec.runPolicy.suspend`), else False;
- `Ready`: True while its training pods are all up and training, else False.
Their reason and message are the phase's whenever they are not True: why the job is not (yet)
ready, done or failed; except `Suspended` once a job has been suspended and resumed: False with
reason `Resumed` from then on (the OpenAI API's events read it, and a suspension and its resume
can fall in one second of `lastTransitionTime`). Beside them, one condition per phase the job
has been in (`Pending`, `Queued`, `Preparing`, `Training`), True for the current one, False for
earlier ones; and `SpecChangeRefused` and `NetworkDegraded` when they apply. So
`kubectl wait --for=condition=Succeeded finetunejob/NAME` waits for a job to finish well, and
`--for=condition=Failed` for it to fail.
"""

from __future__ import annotations

# The summary conditions, always present.
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "Suspended"
READY = "Ready"
SUMMARY = (SUCCEEDED, FAILED, SUSPENDED, READY)

# Specific conditions.
SPEC_CHANGE_REFUSED = "SpecChangeRefused"
NETWORK_DEGRADED = "NetworkDegraded"


class Reason:
    """The reasons the operator gives for a job's phase (its conditions carry them). The
    refusal, Kueue and pod reasons (ChildRejected, PodsRejected, Kueue's own, ImagePullBackOff
    and the other container waiting reasons) come from what was observed."""

    INVALID_SPEC = "InvalidSpec"
    DEPENDENCY_CYCLE = "DependencyCycle"
    WAITING_FOR_JOB = "WaitingForJob"
    CREATING = "Creating"
    TRAINING_SUCCEEDED = "TrainingSucceeded"
    TRAINING_FAILED = "TrainingFailed"
    PREPARE_FAILED = "PrepareFailed"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    """Suspended=False once the job has been suspended and resumed (it keeps this reason)."""
    CLAIM_PENDING = "ClaimPending"
    UNSCHEDULABLE = "Unschedulable"
    PREPARING = "Preparing"
    TRAINING = "Training"
    STARTING = "Starting"
    # specific conditions
    TRAINING_STARTED = "TrainingStarted"
    """SpecChangeRefused: the refused change would alter a run that already started."""
    BELOW_FABRIC = "BelowFabric"
    FABRIC_OK = "FabricOK"
