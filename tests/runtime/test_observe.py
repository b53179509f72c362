"""What the operator reads off the cluster: a pod's state (a table of real pod statuses) and
the outputs a job is expected to leave on its volume."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.render import RenderSettings
from kubetune.runtime.observe import expected_outputs, pod_state
from kubetune.runtime.status import PodState
from kubetune_api.status import Outputs
from tests.support.factories import make_job


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (
            {
                "metadata": {"name": "a"},
                "status": {
                    "phase": "Pending",
                    "initContainerStatuses": [{"name": "prepare", "state": {"running": {}}}],
                },
            },
            PodState("a", preparing=True),
        ),
        (
            {
                "metadata": {"name": "b"},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "pytorch",
                            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                        }
                    ],
                },
            },
            PodState(
                "b", phase="Failed", failure="container pytorch exited with code 137 (OOMKilled)"
            ),
        ),
        (
            {
                "metadata": {"name": "c"},
                "status": {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "message": "Insufficient nvidia.com/gpu",
                        }
                    ],
                },
            },
            PodState("c", unschedulable="Insufficient nvidia.com/gpu"),
        ),
        (
            {
                "metadata": {"name": "d"},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [
                        {"name": "pytorch", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                    ],
                },
            },
            PodState("d", waiting_reason="ImagePullBackOff"),
        ),
        (
            {
                "metadata": {"name": "e"},
                "status": {
                    "phase": "Failed",
                    "initContainerStatuses": [
                        {
                            "name": "prepare",
                            "state": {
                                "terminated": {
                                    "exitCode": 1,
                                    "message": "preparing\nkubetune prepare: no usable samples\n",
                                }
                            },
                        }
                    ],
                },
            },
            PodState(
                "e",
                phase="Failed",
                failure="container prepare exited with code 1 (Error): "
                "kubetune prepare: no usable samples",
                prepare_failure="init container prepare exited with code 1: "
                "kubetune prepare: no usable samples",
            ),
        ),
        (
            {
                "metadata": {"name": "f"},
                "status": {
                    "phase": "Failed",
                    "initContainerStatuses": [
                        {"name": "prepare", "state": {"terminated": {"exitCode": 137}}}
                    ],
                },
            },
            PodState("f", phase="Failed", failure="container prepare exited with code 137 (Error)"),
        ),
        (
            # the trainer's own termination message (log.fail), not a torchrun summary
            {
                "metadata": {"name": "g"},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "pytorch",
                            "state": {
                                "terminated": {
                                    "exitCode": 1,
                                    "message": "kubetune train: the workspace volume is full\n",
                                }
                            },
                        }
                    ],
                },
            },
            PodState(
                "g",
                phase="Failed",
                failure="container pytorch exited with code 1 (Error): "
                "kubetune train: the workspace volume is full",
            ),
        ),
        (
            {
                "metadata": {"name": "h"},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "pytorch",
                            "state": {
                                "terminated": {
                                    "exitCode": 1,
                                    "message": "12:00:01 kubetune step 3\n=====\nChildFailedError",
                                }
                            },
                        }
                    ],
                },
            },
            PodState("h", phase="Failed", failure="container pytorch exited with code 1 (Error)"),
        ),
    ],
)
def test_pod_observation(pod: dict[str, Any], expected: PodState) -> None:
    assert pod_state(pod) == expected


def test_outputs_list_each_gguf_file() -> None:
    job = parse_job(
        make_job(
            **{
                "metadata.name": "chat",
                "spec.output.formats": ["adapter", "merged", "gguf"],
                "spec.output.gguf": {"quantizations": ["q4_k_m", "q8_0", "q4_k_m"]},
            }
        )
    )
    outputs = expected_outputs(job, RenderSettings())
    assert outputs["merged"] == "/workspace/jobs/chat/output/merged"
    assert outputs["gguf"] == [
        {"quantization": "q4_k_m", "path": "/workspace/jobs/chat/output/gguf/chat-q4_k_m.gguf"},
        {"quantization": "q8_0", "path": "/workspace/jobs/chat/output/gguf/chat-q8_0.gguf"},
    ]
    Outputs.model_validate(outputs)  # the status schema takes it
