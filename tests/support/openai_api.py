"""Helpers for the OpenAI fine-tuning API's tests: the example catalog, records in OpenAI's
own formats, and `kubetune api` run as a process against a cluster."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubetune.local_run import free_port
from kubetune.openai_api.catalog import Catalog
from kubetune_api.resource import GROUP, PLURAL
from tests.support.factories import REPO
from tests.support.kube import Kube, eventually

CATALOG_PATH = REPO / "examples" / "openai-api" / "catalog.yaml"
OPENAI_URL = "https://api.openai.com/v1"
# curl's own configuration (read from $CURL_HOME/.curlrc), so that an example runs as written:
# quiet, `[` `]` in URLs taken literally (OpenAI writes `metadata[key]=value`), and the HTTP
# status written last to stderr, out of the way of the body (which an example may redirect).
CURLRC = (
    'silent\nshow-error\ngloboff\nnoproxy = "*"\nwrite-out = "%{stderr}\\nHTTP %{http_code}\\n"\n'
)


def catalog() -> Catalog:
    return Catalog.load(CATALOG_PATH)


def chat_line(question: str = "What colour is grass?", answer: str = "Grass is green.") -> str:
    """One example in OpenAI's supervised (chat) format."""
    return json.dumps(
        {
            "messages": [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    )


def dpo_line(question: str = "What colour is snow?") -> str:
    """One example in OpenAI's preference (DPO) format."""
    return json.dumps(
        {
            "input": {"messages": [{"role": "user", "content": question}]},
            "preferred_output": [{"role": "assistant", "content": "Snow is white."}],
            "non_preferred_output": [{"role": "assistant", "content": "Snow is green."}],
        }
    )


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def curl_example(example: str, url: str, token: str, cwd: Path, **ids: str) -> tuple[int, str]:
    """One of OpenAI's `curl` examples, run by bash with the real `curl` in `cwd`: its
    `https://api.openai.com/v1` replaced by `url`, `$OPENAI_API_KEY` set to `token`, and the
    example's placeholder ids replaced as `ids` maps them. The HTTP status and stdout."""
    for placeholder, real in ids.items():
        example = example.replace(placeholder, real)
    (cwd / ".curlrc").write_text(CURLRC)
    done = subprocess.run(
        ["bash", "-c", example.replace(OPENAI_URL, url)],
        cwd=cwd,
        env={**os.environ, "OPENAI_API_KEY": token, "CURL_HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    assert done.returncode == 0 and last.startswith("HTTP "), (
        f"curl failed ({done.returncode}):\n{example}\n{done.stderr}"
    )
    return int(last.removeprefix("HTTP ")), done.stdout


class ApiServer:
    """`kubetune api` as its own process, as the chart runs it."""

    def __init__(
        self,
        kubeconfig: str,
        files_dir: Path,
        log_path: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubetune.cli",
                "api",
                "--catalog",
                str(CATALOG_PATH),
                "--files-dir",
                str(files_dir),
                "--kubeconfig",
                kubeconfig,
                "--port",
                str(self.port),
                *extra,
            ],
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        eventually(self.healthy, timeout=60, what="kubetune api to answer /healthz")

    def healthy(self) -> bool:
        assert self.proc.poll() is None, f"kubetune api exited:\n{self.output()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def audit_lines(self) -> list[dict[str, Any]]:
        prefix = "kubetune.api.audit "
        return [
            json.loads(line.split(prefix, 1)[1])
            for line in self.output().splitlines()
            if prefix in line
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def grant(kube: Kube, account: str, verbs: list[str]) -> str:
    """A ServiceAccount with `verbs` on finetunejobs in kube's namespace; its token."""
    kube.run("create", "serviceaccount", account)
    if verbs:
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": account, "namespace": kube.namespace},
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": verbs}],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": kube.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": kube.namespace}],
        }
        kube.apply(role, binding)
    return kube.run("create", "token", account, "--duration=1h").strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resigned(token: str, signing_key: Path, expires_in: int) -> str:
    """`token`, a ServiceAccount token the API server issued, with only its expiry moved to
    now + `expires_in` seconds (negative: in the past) and signed again (RS256, by `openssl
    dgst -sha256 -sign`) with the API server's own service-account signing key: what the API
    server would have issued with that expiry."""
    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims["exp"] = now + expires_in
    claims["iat"] = claims["nbf"] = min(now, claims["exp"]) - 600
    signed = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(signing_key)],
        input=signed.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return f"{signed}.{_b64(signature)}"
