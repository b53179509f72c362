"""The API server, as `kubetune api` talks to it (the only module here with a cluster client).

Two identities:
- the API's own ServiceAccount, for TokenReview and SubjectAccessReview, and to list and watch
  FineTuneJobs for the watch cache (`cache.py`): it can read jobs, never change one;
- the caller's own bearer token for every FineTuneJob call: the API server applies the caller's
  RBAC and admission to each create, read and patch, so the API can never do more for a user
  than `kubectl` would (docs/openai-api.md: why not impersonation).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubetune.openai_api.errors import ApiError, forbidden, invalid, not_found, unauthenticated
from kubetune_api.resource import GROUP, PLURAL, VERSION

SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def service_account_namespace(self) -> str | None:
        if self.username.startswith(SA_PREFIX):
            return self.username.removeprefix(SA_PREFIX).split(":", 1)[0]
        return None


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)


def _translate(err: ApiException, what: str, ident: str) -> ApiError:
    if err.status == 404:
        return not_found(what, ident)
    if err.status == 403:
        return forbidden(_message(err))
    if err.status == 401:
        return unauthenticated("the token was refused by the Kubernetes API server")
    if err.status in (400, 422):
        return invalid(_message(err))
    if err.status == 409:
        return ApiError(409, _message(err), code="conflict")
    return ApiError(502, f"Kubernetes API server: {_message(err)}", type="server_error")


class Cluster:
    def __init__(self, kubeconfig: str | None = None) -> None:
        self.base = client.Configuration()
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=self.base)
        else:
            try:
                config.load_incluster_config(client_configuration=self.base)
            except config.ConfigException:
                config.load_kube_config(client_configuration=self.base)
        self.own = client.ApiClient(self.base)

    def authenticate(self, token: str) -> Identity:
        review = client.AuthenticationV1Api(self.own).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        )
        status = review.status
        if not status or not status.authenticated or not status.user or not status.user.username:
            reason = (status.error if status else None) or "not authenticated"
            raise unauthenticated(f"Invalid Kubernetes token: {reason}")
        user = status.user
        extra = {k: list(v) for k, v in (user.extra or {}).items()}
        return Identity(user.username or "", user.uid or "", tuple(user.groups or ()), extra)

    def authorize(self, who: Identity, verb: str, namespace: str) -> None:
        """403 unless `who` may `verb` finetunejobs in `namespace` (SubjectAccessReview)."""
        spec = client.V1SubjectAccessReviewSpec(
            user=who.username,
            uid=who.uid or None,
            groups=list(who.groups),
            extra=who.extra or None,
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=GROUP, resource=PLURAL
            ),
        )
        review = client.AuthorizationV1Api(self.own).create_subject_access_review(
            client.V1SubjectAccessReview(spec=spec)
        )
        status = review.status
        if status is None or not status.allowed:
            why = f": {status.reason}" if status is not None and status.reason else ""
            raise forbidden(
                f"{who.username} may not {verb} finetunejobs.{GROUP} in namespace "
                f"{namespace!r}{why}"
            )

    def jobs_as(self, token: str) -> UserJobs:
        """FineTuneJob calls made with the caller's own token (and no client certificate)."""
        own = copy.deepcopy(self.base)
        own.cert_file = own.key_file = None
        own.username = own.password = None
        own.refresh_api_key_hook = None
        own.api_key = {"BearerToken": token}
        own.api_key_prefix = {"BearerToken": "Bearer"}
        return UserJobs(client.CustomObjectsApi(client.ApiClient(own)))


class UserJobs:
    def __init__(self, api: Any) -> None:
        self.api = api

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
        try:
            created: dict[str, Any] = self.api.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, doc
            )
        except ApiException as err:
            raise _translate(err, "fine-tuning job", name) from None
        return created

    def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            job: dict[str, Any] = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
        except ApiException as err:
            raise _translate(err, "fine-tuning job", name) from None
        return job
