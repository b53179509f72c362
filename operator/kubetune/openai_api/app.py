"""The HTTP routes of `kubetune api` (FastAPI): OpenAI's files and fine-tuning endpoints.

Reads (list, retrieve, events, checkpoints, models) are served from the watch cache; writes
are made with the caller's own token. Every request: the bearer token is reviewed
(TokenReview; 401 when missing or refused), the namespace chosen (the `OpenAI-Project` header,
which the `openai` client sends as `project=`; else a service account's own namespace; else
`--namespace`), and the call authorized with a SubjectAccessReview on `finetunejobs` in it
(403). Files are authorized as jobs are: upload as `create`, read as `get`/`list`, delete as
`delete`. Every mutating call writes one audit line.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from kubetune.openai_api import jobs as jobspec
from kubetune.openai_api import results, views
from kubetune.openai_api.cache import JobCache
from kubetune.openai_api.catalog import Catalog
from kubetune.openai_api.errors import ApiError, invalid, not_found, unauthenticated
from kubetune.openai_api.files import FILE_ID, FileStore, StoredFile
from kubetune.openai_api.jsonl import check_file
from kubetune.openai_api.kube import Cluster, Identity, UserJobs

audit = logging.getLogger("kubetune.api.audit")
MAX_LIMIT = 100
FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Settings:
    catalog: Catalog
    default_namespace: str | None = None
    max_file_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class Caller:
    who: Identity
    token: str
    namespace: str


def caller(request: Request) -> Caller:
    """Who calls (TokenReview) and in which namespace; 401 without a valid token."""
    cluster: Cluster = request.app.state.cluster
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated(
            "No Kubernetes token: send `Authorization: Bearer <token>` (the openai "
            "client's api_key; `kubectl create token <service-account>` makes one)"
        )
    who = cluster.authenticate(token.strip())
    namespace = (
        request.headers.get("openai-project")
        or who.service_account_namespace
        or settings.default_namespace
    )
    if not namespace:
        raise invalid(
            "No namespace: send the header OpenAI-Project: <namespace> (openai's project=)",
            param="OpenAI-Project",
        )
    return Caller(who, token.strip(), namespace)


CallerDep = Annotated[Caller, Depends(caller)]


def _too_large(settings: Settings) -> ApiError:
    return ApiError(
        413,
        f"file: larger than this server's limit of {settings.max_file_bytes} bytes",
        param="file",
        code="file_too_large",
    )


def create_app(cluster: Cluster, store: FileStore, settings: Settings, cache: JobCache) -> FastAPI:
    """The routes; reads come from `cache` (authorized per caller), writes go out with the
    caller's own token."""
    app = FastAPI(title="kubetune: OpenAI fine-tuning API", docs_url=None, redoc_url=None)
    app.state.cluster = cluster
    app.state.settings = settings

    @app.middleware("http")
    async def refuse_oversized(request: Request, call_next: Any) -> Any:
        # Before the multipart parser spools the body: a declared size over the limit (plus
        # room for the form's other parts) is refused unread.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_file_bytes + FORM_OVERHEAD:
            return JSONResponse(_too_large(settings).body(), status_code=413)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"][1:]) or None
        return JSONResponse(invalid(f"{param}: {first['msg']}", param=param).body(), 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse(ApiError(err.status_code, str(err.detail)).body(), err.status_code)

    def allowed(c: Caller, verb: str) -> UserJobs:
        cluster.authorize(c.who, verb, c.namespace)
        return cluster.jobs_as(c.token)

    def log(c: Caller, action: str, target: str) -> None:
        audit.info(
            json.dumps(
                {"user": c.who.username, "namespace": c.namespace, "action": action, "id": target}
            )
        )

    def stored(c: Caller, file_id: str, param: str = "file_id") -> StoredFile:
        found = store.get(c.namespace, file_id)
        if found is None:
            raise not_found("file", file_id, param=param)
        return found

    def result_job(c: Caller, file_id: str) -> dict[str, Any] | None:
        """The succeeded job whose results file this is, if any (from the watch cache)."""
        if not FILE_ID.match(file_id):
            return None
        return next(
            (
                job
                for job in cache.list(c.namespace)
                if views.openai_status(job) == "succeeded"
                and results.result_file_id(job) == file_id
            ),
            None,
        )

    # Files

    @app.post("/v1/files")
    def upload(
        c: CallerDep,
        file: Annotated[UploadFile, File()],
        purpose: Annotated[str, Form()],
    ) -> dict[str, Any]:
        allowed(c, "create")
        data = file.file.read(settings.max_file_bytes + 1)
        if len(data) > settings.max_file_bytes:
            raise _too_large(settings)
        checked = check_file(data, purpose)
        meta = StoredFile(
            id=f"file-{secrets.token_hex(12)}",
            bytes=len(data),
            created_at=int(time.time()),
            filename=file.filename or "upload.jsonl",
            purpose=purpose,
            kind=checked.kind,
            examples=checked.examples,
        )
        store.put(c.namespace, meta, data, checked.training)
        log(c, "files.create", meta.id)
        return meta.openai()

    @app.get("/v1/files")
    def list_files(
        c: CallerDep,
        after: str | None = None,
        limit: int = 10000,
        order: str = "desc",
        purpose: str | None = None,
    ) -> dict[str, Any]:
        allowed(c, "list")
        kept = store.list(c.namespace) + views.result_files(cache.list(c.namespace))
        files = sorted(kept, key=lambda f: (f.created_at, f.id), reverse=order != "asc")
        items = [f.openai() for f in files if purpose in (None, f.purpose)]
        return views.page(items, after, max(1, min(limit, 10000)), key=lambda f: f["id"])

    @app.get("/v1/files/{file_id}")
    def get_file(c: CallerDep, file_id: str) -> dict[str, Any]:
        allowed(c, "get")
        if job := result_job(c, file_id):
            return views.result_files([job])[0].openai()
        return stored(c, file_id).openai()

    @app.get("/v1/files/{file_id}/content")
    def file_content(c: CallerDep, file_id: str) -> Response:
        allowed(c, "get")
        if job := result_job(c, file_id):
            return Response(results.result_csv(job), media_type="text/csv")
        stored(c, file_id)
        return Response(store.content(c.namespace, file_id), media_type="application/jsonl")

    @app.delete("/v1/files/{file_id}")
    def delete_file(c: CallerDep, file_id: str) -> dict[str, Any]:
        allowed(c, "delete")
        if job := result_job(c, file_id):
            raise invalid(
                f"{file_id} is the results file of fine-tuning job {job['metadata']['name']}:"
                " it goes when the job is deleted",
                param="file_id",
                code="results_file",
            )
        stored(c, file_id)
        store.delete(c.namespace, file_id)
        log(c, "files.delete", file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    # Fine-tuning jobs

    @app.post("/v1/fine_tuning/jobs")
    async def create_job(c: CallerDep, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise invalid("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        return _create_job(c, body)

    def _create_job(c: Caller, body: dict[str, Any]) -> dict[str, Any]:
        user = allowed(c, "create")
        req = jobspec.request_of(body)
        training = stored(c, req["training_file"], "training_file")
        validation = (
            stored(c, req["validation_file"], "validation_file") if req["validation_file"] else None
        )
        doc = jobspec.build_job(
            req,
            name=f"ftjob-{secrets.token_hex(8)}",
            namespace=c.namespace,
            catalog=settings.catalog,
            training=training,
            validation=validation,
            source_of=lambda file_id: store.training_source(c.namespace, file_id),
            connection=store.training_connection(),
        )
        created = user.create(doc)
        cache.remember(created)
        log(c, "fine_tuning.jobs.create", created["metadata"]["name"])
        return views.job_view(created)

    @app.get("/v1/fine_tuning/jobs")
    def list_jobs(
        c: CallerDep, request: Request, after: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        allowed(c, "list")
        wanted = views.metadata_filter(request.query_params.multi_items())
        jobs = views.newest_first(cache.list(c.namespace))
        if wanted:
            jobs = [j for j in jobs if views.has_metadata(j, wanted)]
        # Page the stored objects first: only the page's jobs are turned into OpenAI's shape.
        limit = max(1, min(limit, MAX_LIMIT))
        result = views.page(jobs, after, limit, key=lambda j: str(j["metadata"]["name"]))
        result["data"] = [views.job_view(j) for j in result["data"]]
        return result

    def _job(c: Caller, verb: str, job_id: str) -> tuple[UserJobs, dict[str, Any]]:
        jobspec.check_job_id(job_id)
        user = allowed(c, verb)
        job = cache.get(c.namespace, job_id)
        if job is None:
            raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
        return user, job

    @app.get("/v1/fine_tuning/jobs/{job_id}")
    def retrieve_job(c: CallerDep, job_id: str) -> dict[str, Any]:
        return views.job_view(_job(c, "get", job_id)[1])

    def _switch(c: Caller, job_id: str, action: str) -> dict[str, Any]:
        user, job = _job(c, "patch", job_id)
        state = views.openai_status(job)
        wanted = {
            "cancel": ("validating_files", "queued", "running", "pausing", "paused"),
            "pause": ("validating_files", "queued", "running"),
            "resume": ("pausing", "paused"),
        }[action]
        if state not in wanted:
            raise ApiError(
                400,
                f"fine-tuning job {job_id} is {state}: {action} applies to a job that is "
                f"{', '.join(wanted)}",
                param="fine_tuning_job_id",
                code="invalid_state",
            )
        patch = jobspec.suspend_patch(action != "resume", cancel=action == "cancel")
        patched = user.patch(c.namespace, job_id, patch)
        cache.remember(patched)
        log(c, f"fine_tuning.jobs.{action}", job_id)
        return views.job_view(patched)

    @app.post("/v1/fine_tuning/jobs/{job_id}/cancel")
    def cancel_job(c: CallerDep, job_id: str) -> dict[str, Any]:
        return _switch(c, job_id, "cancel")

    @app.post("/v1/fine_tuning/jobs/{job_id}/pause")
    def pause_job(c: CallerDep, job_id: str) -> dict[str, Any]:
        return _switch(c, job_id, "pause")

    @app.post("/v1/fine_tuning/jobs/{job_id}/resume")
    def resume_job(c: CallerDep, job_id: str) -> dict[str, Any]:
        return _switch(c, job_id, "resume")

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    def job_events(
        c: CallerDep, job_id: str, after: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        events = views.events_view(_job(c, "get", job_id)[1])
        return views.page(events, after, max(1, min(limit, MAX_LIMIT)), key=lambda e: e["id"])

    @app.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    def job_checkpoints(
        c: CallerDep, job_id: str, after: str | None = None, limit: int = 10
    ) -> dict[str, Any]:
        checkpoints = views.checkpoints_view(_job(c, "get", job_id)[1])
        return views.page(checkpoints, after, max(1, min(limit, MAX_LIMIT)), key=lambda e: e["id"])

    @app.get("/v1/models")
    def list_models(c: CallerDep) -> dict[str, Any]:
        allowed(c, "list")
        models = views.models_view(sorted(settings.catalog.models), cache.list(c.namespace))
        return {"object": "list", "data": models}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
