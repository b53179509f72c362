"""From raw API objects to what the status function needs (pure)."""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render import RenderSettings, cluster_layout
from kubetune.render.metadata import Obj
from kubetune.render.storage import workspace_claim
from kubetune.render.trainer_config import trainer_config
from kubetune.runtime.status import PodState
from kubetune_api.config import gguf_files, output_formats


def pod_state(pod: Obj) -> PodState:
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    preparing = any(
        "running" in (c.get("state") or {}) or "waiting" in (c.get("state") or {})
        for c in status.get("initContainerStatuses") or []
    )
    waiting = failure = None
    for c in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        state = c.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (
            None,
            "PodInitializing",
            "ContainerCreating",
        ):
            waiting = state["waiting"]["reason"]
        done = state.get("terminated") or (c.get("lastState") or {}).get("terminated")
        if done and done.get("exitCode", 0) != 0:
            said = [
                line.strip()
                for line in (done.get("message") or "").splitlines()
                if line.startswith("kubetune ")
            ]
            failure = (
                f"container {c['name']} exited with code {done['exitCode']}"
                f" ({done.get('reason') or 'Error'})" + (f": {said[-1]}" if said else "")
            )
    prepare_failure = None
    for c in status.get("initContainerStatuses") or []:
        done = (c.get("state") or {}).get("terminated") or {}
        # 1-127: the program said no (bad data, missing file); 128+: killed, worth a retry.
        if 0 < done.get("exitCode", 0) < 128:
            last = [line for line in (done.get("message") or "").splitlines() if line.strip()]
            prepare_failure = f"init container {c['name']} exited with code {done['exitCode']}" + (
                f": {last[-1].strip()}" if last else ""
            )
    unschedulable = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            unschedulable = cond.get("message") or cond.get("reason")
    return PodState(
        name=name,
        phase=status.get("phase", "Pending"),
        preparing=preparing,
        waiting_reason=waiting,
        failure=failure,
        prepare_failure=prepare_failure,
        unschedulable=unschedulable,
    )


def expected_outputs(job: FineTuneJob, settings: RenderSettings) -> Obj:
    """Where the trainer leaves the artifacts (deterministic from the spec)."""
    config = trainer_config(job, cluster_layout(job, settings))
    out = config.paths.output
    outputs: Obj = {"claimName": workspace_claim(job), "manifest": f"{out}/manifest.json"}
    for kind in output_formats(config):
        if kind != "gguf":
            outputs[kind] = f"{out}/{kind}"
    if files := gguf_files(config):
        outputs["gguf"] = [{"quantization": q, "path": path} for q, path in files.items()]
    if config.entrypoint is None:  # the built-in trainer's (job_report.py)
        outputs["report"] = f"{out}/report.html"
        outputs["metrics"] = f"{out}/metrics.jsonl"
        if config.output.uri:  # uploaded after the export, manifest.json last
            prefix = config.output.uri.rstrip("/")
            outputs["uri"] = f"{prefix}/"
            outputs["uriManifest"] = f"{prefix}/manifest.json"
    return outputs
