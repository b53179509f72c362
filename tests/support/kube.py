"""A small test-side client for the local control plane: kubectl, as users drive a cluster."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class KubectlError(RuntimeError):
    def __init__(self, args: list[str], stderr: str) -> None:
        self.stderr = stderr
        super().__init__(f"kubectl {' '.join(args)}: {stderr}")


@dataclass
class Kube:
    kubeconfig: str
    kubectl_path: str
    namespace: str = "default"

    def run(self, *args: str, stdin: str | None = None, namespaced: bool = True) -> str:
        # The namespace goes before the arguments: after `exec … --` it would be the command's.
        cmd = [self.kubectl_path, "--kubeconfig", self.kubeconfig]
        if namespaced:
            cmd += ["-n", self.namespace]
        cmd += args
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise KubectlError(list(args), proc.stderr.strip())
        return proc.stdout

    def apply(
        self, *objects: dict[str, Any], server_side: bool = False, dry_run: bool = False
    ) -> str:
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts"]
        if dry_run:
            args += ["--dry-run=server"]
        return self.run(*args, stdin=yaml.safe_dump_all(list(objects)))

    def get(self, kind: str, name: str | None = None, *, selector: str | None = None) -> Any:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if selector:
            args += ["-l", selector]
        data = json.loads(self.run(*args))
        return data if name else data["items"]

    def exists(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
            return True
        except KubectlError as err:
            if "NotFound" in err.stderr or "not found" in err.stderr:
                return False
            raise

    def can_i(
        self, verb: str, resource: str, *extra: str, user: str, all_namespaces: bool = False
    ) -> bool:
        """`kubectl auth can-i` as `user` (the API server's own RBAC verdict)."""
        scope = ["-A"] if all_namespaces else ["-n", self.namespace]
        cmd = [self.kubectl_path, "--kubeconfig", self.kubeconfig, "auth", "can-i", verb, resource]
        cmd += [*scope, *extra, f"--as={user}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
        return out == "yes"

    def with_namespace(self, namespace: str) -> Kube:
        return Kube(self.kubeconfig, self.kubectl_path, namespace)


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float = 90,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll `check` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            return dict(cond)
    return None
