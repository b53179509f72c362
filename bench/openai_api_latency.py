"""Latency of `kubetune api`'s reads with 1,000 fine-tuning jobs on the local control plane.

    python bench/openai_api_latency.py [JOBS]

Creates JOBS FineTuneJobs (default 1,000) as the API makes them (`build_job`, labelled and
annotated; no operator runs, so nothing trains), starts `kubetune api`, and times, one request
at a time over a kept-alive connection with a ServiceAccount token: retrieving a random job,
and a list page of 20 after a random cursor. Every request pays a TokenReview and a
SubjectAccessReview; the jobs come from the watch cache. Target: p99 ≤ 50 ms for both.

Baseline, measured in the same run: the API server itself answering a GET of one FineTuneJob
with the same token (what serving reads without a cache would cost per request, before any
authorization of our own).
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from common import local_cluster  # noqa: E402

from kubetune.api.crd import crd_yaml  # noqa: E402
from kubetune.openai_api.files import StoredFile  # noqa: E402
from kubetune.openai_api.jobs import build_job, request_of  # noqa: E402
from tests.support.openai_api import ApiServer, catalog  # noqa: E402

SAMPLES = 400


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(what: str, ms: list[float]) -> str:
    return (
        f"{what:<44} p50 {statistics.median(ms):6.1f} ms   p99 {p(ms, 0.99):6.1f} ms   "
        f"max {max(ms):6.1f} ms   (n={len(ms)})"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    kubeconfig, kubectl = local_cluster()

    def k(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, *args],
            input=stdin,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    k("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=crd_yaml())
    k("wait", "--for=condition=Established", "crd/finetunejobs.kubetune.io")
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    k("create", "namespace", ns)
    k("-n", ns, "create", "serviceaccount", "bench")
    k(
        "-n",
        ns,
        "create",
        "role",
        "bench",
        "--verb=get,list,create,patch",
        "--resource=finetunejobs.kubetune.io",
    )
    k("-n", ns, "create", "rolebinding", "bench", "--role=bench", f"--serviceaccount={ns}:bench")
    token = k("-n", ns, "create", "token", "bench", "--duration=1h").strip()
    stored = StoredFile("file-" + "a" * 24, 1, 1, "t.jsonl", "fine-tune", "supervised", 1)
    request = request_of({"model": "tiny-llama", "training_file": stored.id})
    names = [f"ftjob-{i:016x}" for i in range(count)]
    started = time.monotonic()
    for start in range(0, count, 100):
        docs = [
            build_job(
                request,
                name=name,
                namespace=ns,
                catalog=catalog(),
                training=stored,
                validation=None,
                source_of=lambda f: f"pvc://kubetune-files/{ns}/{f}",
            )
            for name in names[start : start + 100]
        ]
        k(
            "create",
            "-f",
            "-",
            stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}),
        )
    print(f"{count} FineTuneJobs created in {time.monotonic() - started:.1f} s")

    files = Path(tempfile.mkdtemp())
    api = ApiServer(kubeconfig, files, files / "api.log")  # waits for /healthz
    port = api.port
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"}

        def timed(path: str) -> tuple[float, dict[str, Any]]:
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 200, body
            return (time.perf_counter() - t) * 1000, body

        first = timed("/v1/fine_tuning/jobs?limit=100")[1]
        assert len(first["data"]) == 100 and first["has_more"], "the cache is not full"
        rng = random.Random(1)
        for _ in range(20):  # warm-up
            timed(f"/v1/fine_tuning/jobs/{rng.choice(names)}")
        retrieve = [timed(f"/v1/fine_tuning/jobs/{rng.choice(names)}")[0] for _ in range(SAMPLES)]
        pages = []
        for _ in range(SAMPLES):
            after = urllib.parse.quote(rng.choice(names))
            pages.append(timed(f"/v1/fine_tuning/jobs?limit=20&after={after}")[0])

        # Baseline: the API server's own GET of one FineTuneJob, same token, kept alive.
        server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
        url = urllib.parse.urlparse(server["server"])
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a local test cluster's self-signed certificate
        direct = http.client.HTTPSConnection(url.hostname, url.port, context=context)
        base = []
        for _ in range(SAMPLES):
            name = rng.choice(names)
            t = time.perf_counter()
            direct.request(
                "GET",
                f"/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs/{name}",
                headers=headers,
            )
            response = direct.getresponse()
            response.read()
            assert response.status == 200
            base.append((time.perf_counter() - t) * 1000)
    finally:
        api.stop()
    print(line("baseline: API server GET of one FineTuneJob", base))
    print(line("kubetune api: retrieve a job", retrieve))
    print(line("kubetune api: list page of 20 (random cursor)", pages))
    k("delete", "namespace", ns, "--wait=false")


if __name__ == "__main__":
    main()
