"""OpenAI's fine-tuning API, served by `kubetune api` over FineTuneJobs on the real local control
plane, driven by OpenAI's own `openai` client, unmodified, with service-account tokens that the
real API server reviews (TokenReview) and authorizes (SubjectAccessReview, RBAC).

One walk through the API (the client is the reference for paths, shapes and error classes):
upload, refuse a bad line and an oversized file, create jobs, list with cursor pagination,
retrieve, pause (the operator reports Suspended: `paused`), resume, cancel; events and
checkpoints; and the refusals: a token without RBAC rights (403), another namespace's job
(404), an invalid (401) or missing (401) token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from kubetune.api.job import GROUP, PLURAL
from tests.support.kube import Kube, eventually
from tests.support.openai_api import ApiServer, chat_line, dpo_line, jsonl
from tests.support.operator import Operator, phase_is

MAX_FILE_BYTES = 4096


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


@pytest.fixture
def other_namespace(cluster: Kube) -> Iterator[Kube]:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    cluster.run("create", "namespace", namespace, namespaced=False)
    yield cluster.with_namespace(namespace)
    cluster.run("delete", "namespace", namespace, "--wait=false", namespaced=False)


@pytest.fixture
def server(cluster: Kube, tmp_path: Path) -> Iterator[ApiServer]:
    running = ApiServer(
        cluster.kubeconfig,
        tmp_path / "files",
        tmp_path / "api.log",
        "--max-file-bytes",
        str(MAX_FILE_BYTES),
    )
    yield running
    running.stop()


def status_code(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_openai_client_drives_finetunejobs(
    operator: Operator, kube: Kube, other_namespace: Kube, server: ApiServer
) -> None:
    verbs = ["get", "list", "create", "patch", "delete"]
    client = OpenAI(base_url=server.url, api_key=grant(kube, "trainer", verbs), max_retries=0)
    stranger = OpenAI(
        base_url=server.url, api_key=grant(other_namespace, "stranger", verbs), max_retries=0
    )
    nobody = OpenAI(base_url=server.url, api_key=grant(kube, "nobody", []), max_retries=0)

    # Files: upload, read back, refusals naming the line; oversized gets 413.
    data = jsonl(chat_line(), chat_line("What is 2 plus 6?", "2 plus 6 is 8."))
    uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert (uploaded.object, uploaded.bytes, uploaded.purpose) == ("file", len(data), "fine-tune")
    assert client.files.retrieve(uploaded.id).filename == "train.jsonl"
    assert client.files.content(uploaded.id).read() == data
    assert uploaded.id in [f.id for f in client.files.list()]
    pairs = client.files.create(file=("pairs.jsonl", jsonl(dpo_line())), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as bad_line:
        client.files.create(file=("bad.jsonl", jsonl(chat_line(), "{oops")), purpose="fine-tune")
    assert bad_line.value.param == "file" and "file line 2: not JSON" in bad_line.value.message
    with pytest.raises(openai.APIStatusError) as too_big:
        big = jsonl(*[chat_line()] * (MAX_FILE_BYTES // len(chat_line()) + 1))
        client.files.create(file=("big.jsonl", big), purpose="fine-tune")
    assert too_big.value.status_code == 413 and too_big.value.code == "file_too_large"

    # Jobs: create (a FineTuneJob with OpenAI's fields mapped), an unknown model refused.
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=uploaded.id,
        hyperparameters={"n_epochs": 2, "batch_size": 16},
        suffix="grass",
        seed=7,
        metadata={"team": "a"},
    )
    assert job.status in ("validating_files", "queued") and job.organization_id == kube.namespace
    spec = kube.get("finetunejob", job.id)["spec"]
    assert spec["training"]["epochs"] == 2 and spec["training"]["seed"] == 7
    assert spec["dataset"]["sources"][0]["source"] == (
        f"pvc://kubetune-files/{kube.namespace}/{uploaded.id}/training.jsonl"
    )
    with pytest.raises(openai.BadRequestError) as unknown:
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=uploaded.id)
    assert unknown.value.param == "model" and "tiny-llama" in unknown.value.message
    dpo = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=pairs.id,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
    )
    assert kube.get("finetunejob", dpo.id)["spec"]["training"]["dpo"]["beta"] == 0.2
    third = client.fine_tuning.jobs.create(model="tiny-llama", training_file=uploaded.id)

    # List: cursor pagination walks all three, newest first in pages of two.
    first_page = client.fine_tuning.jobs.list(limit=2)
    assert len(first_page.data) == 2 and first_page.has_more
    walked = [j.id for j in client.fine_tuning.jobs.list(limit=2)]  # auto-paging follows `after`
    assert sorted(walked) == sorted([job.id, dpo.id, third.id]) and len(walked) == 3
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "a"})] == [job.id]

    # Retrieve, pause (the operator suspends it: paused), resume, cancel.
    assert client.fine_tuning.jobs.retrieve(job.id).method.type == "supervised"  # type: ignore[union-attr]
    assert client.fine_tuning.jobs.pause(job.id).status in ("pausing", "paused")
    eventually(lambda: phase_is(kube, job.id, "Suspended"), what="the operator to suspend the job")
    # OpenAI's reference lists pausing and paused; the client's Literal type does not (yet).
    assert str(client.fine_tuning.jobs.retrieve(job.id).status) == "paused"
    assert str(client.fine_tuning.jobs.resume(job.id).status) != "paused"
    assert kube.get("finetunejob", job.id)["spec"]["runPolicy"]["suspend"] is False
    assert client.fine_tuning.jobs.cancel(third.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError) as again:
        client.fine_tuning.jobs.cancel(third.id)
    assert again.value.code == "invalid_state"
    assert client.fine_tuning.jobs.retrieve(third.id).status == "cancelled"

    # Events (from the creation and the operator's conditions) and checkpoints (none yet).
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    assert "Created fine-tuning job" in messages
    assert any(m.startswith("Suspended") for m in messages), messages
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    assert "tiny-llama" in [m.id for m in client.models.list()]

    # Refusals: no RBAC rights 403; another namespace's job and file 404; bad or no token 401.
    with pytest.raises(openai.PermissionDeniedError):
        nobody.fine_tuning.jobs.list()
    with pytest.raises(openai.PermissionDeniedError):
        nobody.files.create(file=("train.jsonl", data), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError):
        stranger.fine_tuning.jobs.retrieve(job.id)
    # The namespace is the caller's to choose (OpenAI-Project, the client's project=), and RBAC's
    # to allow: the trainer has no rights in the stranger's namespace.
    elsewhere = OpenAI(
        base_url=server.url,
        api_key=client.api_key,
        project=other_namespace.namespace,
        max_retries=0,
    )
    with pytest.raises(openai.PermissionDeniedError):
        elsewhere.fine_tuning.jobs.list()
    with pytest.raises(openai.NotFoundError):
        stranger.files.retrieve(uploaded.id)
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server.url, api_key="not-a-token", max_retries=0).files.list()
    code, body = status_code(f"{server.url}/fine_tuning/jobs", {})
    assert code == 401 and set(body["error"]) == {"message", "type", "code", "param"}

    # One audit line per mutating call: who, what, which job or file.
    trainer = f"system:serviceaccount:{kube.namespace}:trainer"
    actions = [(a["user"], a["action"], a["id"]) for a in server.audit_lines()]
    for action, target in [
        ("files.create", uploaded.id),
        ("fine_tuning.jobs.create", job.id),
        ("fine_tuning.jobs.pause", job.id),
        ("fine_tuning.jobs.resume", job.id),
        ("fine_tuning.jobs.cancel", third.id),
    ]:
        assert (trainer, action, target) in actions
    client.files.delete(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
