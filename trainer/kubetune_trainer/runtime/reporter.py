"""The trainer's status reporter: rank 0 patches its FineTuneJob's status subresource.

A deliberately tiny client (urllib, no kubernetes package): in a pod it uses the job's own
ServiceAccount token, which may `patch` `finetunejobs/status` of this one job and nothing else
(RBAC plus an admission policy: the operator's render/rbac.py). Reports are rate-limited,
and a failed report is logged, with the API server's message, and dropped: training never
fails because the API server is unreachable or refuses.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubetune_api.resource import status_path
from kubetune_api.status import FineTuneJobStatus, Progress
from kubetune_trainer.runtime.checkpoints import step_of
from kubetune_trainer.runtime.log import log
from kubetune_trainer.runtime.progress import stamped

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PROGRESS_FIELDS = tuple(Progress.model_fields)  # what a report's `progress` may hold


def _without_none(value: Any) -> Any:
    """A merge patch's null deletes a field: leave unknown values out instead."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def _refusal(err: urllib.error.HTTPError) -> str:
    """HTTP code and the API server's own message (its Status body), e.g. an admission refusal."""
    try:
        message = json.loads(err.read() or b"{}").get("message")
    except (ValueError, OSError, AttributeError):
        message = None
    return f"HTTP {err.code}: {message or err.reason}"


class StatusSink:
    def __init__(
        self,
        server: str,
        token: str,
        ca_file: str | None,
        name: str,
        namespace: str,
        min_interval: float = 10.0,
    ) -> None:
        self.url = server.rstrip("/") + status_path(namespace, name)
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file)
        self.min_interval = min_interval
        self.last = 0.0

    @classmethod
    def from_environment(cls) -> StatusSink | None:
        """In a pod with a mounted token; None elsewhere (e.g. `kubetune run`)."""
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT"),
        )
        name, namespace = os.environ.get("KUBETUNE_JOB_NAME"), os.environ.get("KUBETUNE_NAMESPACE")
        token = SA_DIR / "token"
        if not (host and port and name and namespace and token.exists()):
            return None
        return cls(
            f"https://{host}:{port}",
            token.read_text().strip(),
            str(SA_DIR / "ca.crt"),
            name,
            namespace,
        )

    @staticmethod
    def body(progress: dict[str, Any]) -> dict[str, Any]:
        """The status merge patch: progress (when the report has any), the latest checkpoint and
        the kept ones with their metrics, the preflight's `network`, `evaluation`, and the
        downsampled metric history (`metrics`)."""
        status: dict[str, Any] = {}
        fields = {k: progress[k] for k in PROGRESS_FIELDS if progress.get(k) is not None}
        if fields.keys() - {"updatedAt"}:
            status["progress"] = fields
        if network := progress.get("network"):
            status["network"] = {k: v for k, v in network.items() if v is not None}
        if latest := progress.get("latestCheckpoint"):
            status["checkpoints"] = {"latest": latest}
            if (step := step_of(Path(latest))) is not None:
                status["checkpoints"]["latestStep"] = step
        if kept := progress.get("checkpointsKept"):
            status.setdefault("checkpoints", {})["kept"] = kept  # a list: replaced whole
        if evaluation := progress.get("evaluation"):
            status["evaluation"] = _without_none(evaluation)
        if metrics := progress.get("metrics"):
            status["metrics"] = metrics  # its list of points is replaced whole
        # Through the status model the CRD is generated from: a field the CRD does not have, or
        # a value of the wrong type, fails here (and in the tests), not as a refused patch.
        typed = FineTuneJobStatus.model_validate(status)
        return {"status": typed.model_dump(mode="json", exclude_unset=True)}

    def report(self, progress: dict[str, Any], force: bool = False) -> bool:
        """Patch the status; at most one unforced report per `min_interval`. A forced report
        (the preflight's, the last of a run) goes out at once and leaves that clock alone, so
        the first training step is still reported live."""
        if not force:
            if time.monotonic() - self.last < self.min_interval:
                return False
            self.last = time.monotonic()
        request = urllib.request.Request(
            self.url,
            data=json.dumps(self.body(stamped(progress))).encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/merge-patch+json",
            },
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=5):
                return True
        except urllib.error.HTTPError as err:
            log(f"could not report progress to the FineTuneJob status: {_refusal(err)}")
            return False
        except (urllib.error.URLError, OSError) as err:
            log(f"could not report progress to the FineTuneJob status: {err}")
            return False


class Sinks:
    """Report to several sinks (the progress file always, the status when in a pod)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def report(self, progress: dict[str, Any], force: bool = False) -> None:
        for sink in self.sinks:
            sink.report(progress, force=force)
