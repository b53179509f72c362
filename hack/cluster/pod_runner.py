"""One pod on the process node: init containers, then containers, as local processes; its
status written back; SIGTERM, grace period, SIGKILL on deletion."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from node_api import Cluster, PodError, now
from pod_inputs import PodInputs, expand

from kubetune.render.metadata import Obj

log = logging.getLogger("process-node")


class PodRunner:
    def __init__(self, cluster: Cluster, pod: Obj, state: Path) -> None:
        self.cluster, self.pod = cluster, pod
        meta = pod["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        self.dir = state / "pods" / f"{self.namespace}_{self.name}"
        self.inputs = PodInputs(cluster, pod, self.dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.done = threading.Event()
        self.started = now()
        self.init_statuses: list[Obj] = []
        self.statuses: list[Obj] = []
        self.thread = threading.Thread(target=self.run, name=f"pod-{self.name}", daemon=True)

    # -- status --------------------------------------------------------------------------

    def write_status(
        self, phase: str, reason: str | None = None, message: str | None = None
    ) -> None:
        spec = self.pod["spec"]
        initialized = len(self.init_statuses) == len(spec.get("initContainers") or []) and all(
            s["state"].get("terminated", {}).get("exitCode") == 0 for s in self.init_statuses
        )
        ready = phase == "Running" and all(s.get("ready") for s in self.statuses)
        stamp = now()

        def cond(kind: str, ok: bool) -> Obj:
            return {"type": kind, "status": str(ok), "lastTransitionTime": stamp}

        status: Obj = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started,
            "conditions": [
                cond("PodScheduled", True),
                cond("Initialized", initialized),
                cond("ContainersReady", ready),
                cond("Ready", ready),
            ],
            "initContainerStatuses": self.init_statuses or None,
            "containerStatuses": self.statuses or [self.waiting(c) for c in spec["containers"]],
            "reason": reason,
            "message": message,
        }
        try:
            self.cluster.core.patch_namespaced_pod_status(
                self.name, self.namespace, {"status": status}
            )
        except ApiException as err:
            if err.status != 404:
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, err)

    @staticmethod
    def waiting(container: Obj, reason: str = "PodInitializing") -> Obj:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": reason}},
        }

    @staticmethod
    def running(container: Obj, started: str, ready: bool) -> Obj:
        return {
            **PodRunner.waiting(container),
            "ready": ready,
            "started": True,
            "state": {"running": {"startedAt": started}},
        }

    @staticmethod
    def terminated(container: Obj, started: str, code: int, message: str | None) -> Obj:
        return {
            **PodRunner.waiting(container),
            "state": {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": now(),
                    **({"message": message} if message else {}),
                }
            },
        }

    def run_container(self, container: Obj, volumes: dict[str, tuple[str, Path | None]]) -> int:
        env = self.inputs.environment(container)
        argv = [
            expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])
        ]
        if not argv:
            raise PodError(
                "CreateContainerConfigError", f"container {container['name']!r} has no command"
            )
        script = self.inputs.launch_script(container, volumes)
        cmd = [
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            container["name"],
            *argv,
        ]
        with (self.dir / f"{container['name']}.log").open("ab") as out:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            code = self.process.wait()
        return 128 - code if code < 0 else code  # killed by a signal: 128 + signal number

    def tail(self, container: Obj) -> str:
        """The termination message, as the kubelet makes it: what the container wrote to its
        terminationMessagePath; else, for a failed container under FallbackToLogsOnError, the
        end of its log (here: its last 20 lines)."""
        written = self.inputs.termination_file(container)
        if written.is_file() and (message := written.read_text(errors="replace")[-4096:]):
            return message
        lines = (self.dir / f"{container['name']}.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])

    def run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._run()
        except PodError as err:
            log.warning("pod %s/%s: %s", self.namespace, self.name, err.message)
            self.write_status("Failed", err.reason, err.message)
        except Exception as err:
            log.exception("pod %s/%s failed to run", self.namespace, self.name)
            self.write_status("Failed", "ProcessNodeError", str(err))
        finally:
            self.done.set()

    def _run(self) -> None:
        spec = self.pod["spec"]
        self.write_status("Pending")
        volumes = self.inputs.volume_sources()
        for container in spec.get("initContainers") or []:
            if self.stopping.is_set():
                return
            started = now()
            self.init_statuses.append(self.running(container, started, ready=False))
            self.write_status("Pending")
            code = self.run_container(container, volumes)
            message = self.tail(container) if code else None
            self.init_statuses[-1] = self.terminated(container, started, code, message)
            log.info(
                "pod %s/%s: init container %s exited %d",
                self.namespace,
                self.name,
                container["name"],
                code,
            )
            if code != 0:
                self.write_status("Failed")
                return
        if self.stopping.is_set():
            return
        # One process per container, one after another would deadlock a sidecar; run them together.
        codes: dict[str, int] = {}
        started = now()
        self.statuses = [self.running(c, started, ready=True) for c in spec["containers"]]
        self.write_status("Running")
        threads = []
        for container in spec["containers"]:

            def go(c: Obj = container) -> None:
                codes[c["name"]] = self.run_container(c, volumes)

            threads.append(threading.Thread(target=go, daemon=True))
            threads[-1].start()
        for t in threads:
            t.join()
        self.statuses = [
            self.terminated(
                c, started, codes[c["name"]], self.tail(c) if codes[c["name"]] else None
            )
            for c in spec["containers"]
        ]
        for c in spec["containers"]:
            log.info(
                "pod %s/%s: container %s exited %d",
                self.namespace,
                self.name,
                c["name"],
                codes[c["name"]],
            )
        self.write_status("Succeeded" if not any(codes.values()) else "Failed")

    def stop(self, grace: int) -> None:
        """SIGTERM, wait up to the grace period, SIGKILL (the process group)."""
        self.stopping.set()
        proc = self.process
        if proc and proc.poll() is None:
            with_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            with_group(proc.pid, signal.SIGKILL)
        self.done.wait(timeout=30)


def with_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
