"""OpenAI's fine-tuning API, served by `kubetune api` over FineTuneJobs on the real local control
plane, driven by OpenAI's own `openai` client, unmodified, with service-account tokens that the
real API server reviews (TokenReview) and authorizes (SubjectAccessReview, RBAC).

One walk through the API (the client is the reference for paths, shapes and error classes):
upload, refuse a bad line and an oversized file, create jobs, list with cursor pagination,
retrieve, pause (the operator reports Suspended: `paused`), resume, cancel; events and
checkpoints; and the refusals: a token without RBAC rights (403), another namespace's job
(404), an invalid, expired or missing token (401). A second test runs a job to `succeeded`
through the real operator and training-operator (kwok plays the pods), and OpenAI's `curl`
examples.
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
from openai.types.graders.string_check_grader_param import StringCheckGraderParam

from tests.support.kube import Kube, eventually
from tests.support.openai_api import (
    ApiServer,
    chat_line,
    curl_example,
    dpo_line,
    grant,
    jsonl,
    resigned,
)
from tests.support.operator import Operator, phase_is
from tests.support.process_node import make_claim

MAX_FILE_BYTES = 4096


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
    retrieved = client.fine_tuning.jobs.retrieve(job.id).method
    assert retrieved is not None and retrieved.type == "supervised"
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
    # An expired token: the trainer's own, its expiry moved and signed again with the API server's
    # service-account key (kwokctl's pki). The same token with a future expiry is served, so the
    # expiry alone is what the API server's TokenReview refuses.
    key = Path(kube.kubeconfig).parent / "pki" / "admin.key"
    for expires_in, served in [(600, True), (-300, False)]:
        token = resigned(str(client.api_key), key, expires_in)
        code, body = status_code(f"{server.url}/files", {"Authorization": f"Bearer {token}"})
        assert (code == 200) == served and (code == 401) != served, (expires_in, code, body)
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

    # Reinforcement: prompts with a reference field, and a string_check grader in the shape of
    # OpenAI's reference; the real API server's CEL admits the GRPO job it becomes.
    prompt = {"messages": [{"role": "user", "content": "Capital of France?"}], "answer": "Paris"}
    prompts = client.files.create(
        file=("rft.jsonl", jsonl(json.dumps(prompt))), purpose="fine-tune"
    )
    grader: StringCheckGraderParam = {
        "type": "string_check",
        "name": "exact",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.answer }}",
        "operation": "eq",
    }
    rft = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=prompts.id,
        method={"type": "reinforcement", "reinforcement": {"grader": grader}},
    )
    assert rft.method is not None and rft.method.type == "reinforcement"
    rft_spec = kube.get("finetunejob", rft.id)["spec"]
    assert rft_spec["training"]["objective"] == "grpo"
    (reward,) = rft_spec["rewards"]
    assert reward["name"] == "exact" and reward["stringCheck"]["referenceField"] == "answer"
    assert reward["stringCheck"]["operation"] == "equals"
    assert "grpo" not in spec["training"]  # the entry's GRPO settings: reinforcement jobs only
    client.fine_tuning.jobs.cancel(rft.id)


# OpenAI's own `curl` examples, copied from the API reference's machine-readable source: the
# `x-oaiMeta.examples.request.curl` of each operation in openai/openai-openapi's openapi.yaml
# (commit f85dbe223d40e1a31cba812ab2d755c7e98a92a3), shown at
# https://platform.openai.com/docs/api-reference/files and .../fine-tuning. Two edits, both
# needed for a shell to run them at all: the upload example lacks the `\` after its `file=`
# line (added), and the list example's URL, with its `&`, is quoted.
UPLOAD = """curl https://api.openai.com/v1/files \\
  -H "Authorization: Bearer $OPENAI_API_KEY" \\
  -F purpose="fine-tune" \\
  -F file="@mydata.jsonl" \\
  -F expires_after[anchor]="created_at" \\
  -F expires_after[seconds]=2592000"""
LIST_FILES = """curl https://api.openai.com/v1/files \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
RETRIEVE_FILE = """curl https://api.openai.com/v1/files/file-abc123 \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
FILE_CONTENT = """curl https://api.openai.com/v1/files/file-abc123/content \\
  -H "Authorization: Bearer $OPENAI_API_KEY" > file.jsonl"""
DELETE_FILE = """curl https://api.openai.com/v1/files/file-abc123 \\
  -X DELETE \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
CREATE_JOB = """curl https://api.openai.com/v1/fine_tuning/jobs \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer $OPENAI_API_KEY" \\
  -d '{
    "training_file": "file-BK7bzQj3FfZFXr7DbL6xJwfo",
    "model": "gpt-4o-mini"
  }'"""
LIST_JOBS = """curl "https://api.openai.com/v1/fine_tuning/jobs?limit=2&metadata[key]=value" \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
RETRIEVE_JOB = """curl https://api.openai.com/v1/fine_tuning/jobs/ft-AF1WoRqd3aJAHsqc9NY7iL8F \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
CANCEL_JOB = """curl -X POST https://api.openai.com/v1/fine_tuning/jobs/ftjob-abc123/cancel \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
CHECKPOINTS = """curl https://api.openai.com/v1/fine_tuning/jobs/ftjob-abc123/checkpoints \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
EVENTS = """curl https://api.openai.com/v1/fine_tuning/jobs/ftjob-abc123/events \\
  -H "Authorization: Bearer $OPENAI_API_KEY\""""
ERROR_KEYS = {"message", "type", "code", "param"}


def test_a_job_runs_to_succeeded_and_openais_curl_examples_drive_the_api(
    operator: Operator, kube: Kube, server: ApiServer, tmp_path: Path
) -> None:
    """The whole flow through the real operator and training-operator (kwok plays the pods):
    a job created with the `openai` client is polled with its own `retrieve` until it has
    succeeded, then its events, checkpoints and fine-tuned model are read. Around it, a second
    client: OpenAI's `curl` examples (see UPLOAD above for where they come from), run as written
    apart from the URL, the token and the example ids, with the real `curl` binary."""
    token = grant(kube, "trainer", ["get", "list", "create", "patch", "delete"])
    client = OpenAI(base_url=server.url, api_key=token, max_retries=0)
    make_claim(kube, "kubetune-files")  # the files volume the jobs' pods mount, as the chart has

    def curl(example: str, **ids: str) -> tuple[int, Any]:
        code, out = curl_example(example, server.url, token, tmp_path, **ids)
        return code, json.loads(out) if out else None

    # Upload, with `-F file=@mydata.jsonl` (the extra expires_after fields are ignored).
    data = jsonl(chat_line(), chat_line("What is 2 plus 6?", "2 plus 6 is 8."))
    (tmp_path / "mydata.jsonl").write_bytes(data)
    code, uploaded = curl(UPLOAD)
    assert code == 200, uploaded
    assert (uploaded["object"], uploaded["bytes"], uploaded["filename"]) == (
        "file", len(data), "mydata.jsonl"
    )  # fmt: skip
    file_id = uploaded["id"]

    # The job the client drives to the end, tagged so that the list example finds it.
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file_id, metadata={"key": "value"}
    )

    # Create as written: OpenAI's file id is not here (404), nor, given ours, its model (400
    # naming the catalog's models); both in OpenAI's error shape.
    code, refused = curl(CREATE_JOB)
    assert code == 404 and set(refused["error"]) == ERROR_KEYS, refused
    assert refused["error"]["param"] == "training_file"
    code, refused = curl(CREATE_JOB, **{"file-BK7bzQj3FfZFXr7DbL6xJwfo": file_id})
    assert code == 400 and refused["error"]["param"] == "model", refused
    assert "tiny-llama" in refused["error"]["message"]
    code, other = curl(
        CREATE_JOB, **{"file-BK7bzQj3FfZFXr7DbL6xJwfo": file_id, "gpt-4o-mini": "tiny-llama"}
    )
    assert code == 200 and other["object"] == "fine_tuning.job", other
    code, cancelled = curl(CANCEL_JOB, **{"ftjob-abc123": other["id"]})
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    code, listed = curl(LIST_JOBS)
    assert code == 200 and listed["object"] == "list", listed
    assert [j["id"] for j in listed["data"]] == [job.id] and listed["has_more"] is False
    code, retrieved = curl(RETRIEVE_JOB, **{"ft-AF1WoRqd3aJAHsqc9NY7iL8F": other["id"]})
    assert code == 200 and retrieved["status"] == "cancelled", retrieved
    code, events = curl(EVENTS, **{"ftjob-abc123": other["id"]})
    assert code == 200 and events["object"] == "list", events
    assert {e["object"] for e in events["data"]} == {"fine_tuning.job.event"}
    code, checkpoints = curl(CHECKPOINTS, **{"ftjob-abc123": other["id"]})
    assert code == 200 and (checkpoints["object"], checkpoints["data"]) == ("list", []), checkpoints
    code, files = curl(LIST_FILES)
    assert code == 200 and file_id in [f["id"] for f in files["data"]], files
    code, one = curl(RETRIEVE_FILE, **{"file-abc123": file_id})
    assert code == 200 and one["purpose"] == "fine-tune", one
    code, _ = curl(FILE_CONTENT, **{"file-abc123": file_id})
    assert code == 200 and (tmp_path / "file.jsonl").read_bytes() == data
    code, missing = curl(RETRIEVE_JOB)  # an id that is not there: 404 in OpenAI's shape
    assert code == 404 and set(missing["error"]) == ERROR_KEYS, missing

    # The client polls its job until the operator reports it Succeeded.
    done = eventually(
        lambda: (lambda j: j if j.status in ("succeeded", "failed", "cancelled") else None)(
            client.fine_tuning.jobs.retrieve(job.id)
        ),
        timeout=120,
        what="the API-created job to finish",
    )
    assert done.status == "succeeded", (done, kube.get("finetunejob", job.id).get("status"))
    assert done.finished_at is not None and done.finished_at >= done.created_at
    assert done.fine_tuned_model and done.error is None
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    assert any(m.startswith("Succeeded") for m in messages), messages
    assert "Created fine-tuning job" in messages
    # kwok's pods run no trainer, so no checkpoint is kept: the page is empty, in its shape.
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    assert done.fine_tuned_model in [m.id for m in client.models.list()]
    # Its results file, with OpenAI's columns (kwok's pods log no metrics: the header alone).
    (results_id,) = done.result_files
    results = client.files.retrieve(results_id)
    assert (results.purpose, results.filename) == ("fine-tune-results", "step_metrics.csv")
    header = b"step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
    assert client.files.content(results_id).read() == header
    assert [f.id for f in client.files.list(purpose="fine-tune-results")] == [results_id]
    with pytest.raises(openai.BadRequestError) as derived:
        client.files.delete(results_id)
    assert derived.value.code == "results_file"

    code, deleted = curl(DELETE_FILE, **{"file-abc123": file_id})
    assert code == 200 and deleted == {"id": file_id, "object": "file", "deleted": True}
