"""`helm install` of the chart into the real cluster: CRD established, operator Deployment,
ServiceAccount and RBAC created, and `kubectl auth can-i` shows least privilege, for the
operator and for the OpenAI API (enabled here; off by default)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import yaml

from kubetune.api import parse_job
from kubetune.render import render
from tests.support.factories import REPO, make_job
from tests.support.kube import Kube, condition, eventually


def test_helm_install_creates_a_least_privilege_operator(ftj_crd: Kube) -> None:
    helm = str(Path(ftj_crd.kubectl_path).with_name("helm"))
    namespace = f"kubetune-system-{uuid.uuid4().hex[:6]}"
    release = f"kt{uuid.uuid4().hex[:4]}"
    base = [helm, "--kubeconfig", ftj_crd.kubeconfig, "--namespace", namespace]
    # The CRD already exists (other tests applied it): the chart takes it over.
    subprocess.run(
        [
            *base,
            "install",
            release,
            str(REPO / "charts/kubetune"),
            "--create-namespace",
            "--take-ownership",
            "--force-conflicts",
            "--set",
            "openaiApi.enabled=true",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        ops = ftj_crd.with_namespace(namespace)
        crd = ops.get("crd", "finetunejobs.kubetune.io")
        assert condition(crd, "Established")
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
        deploy = eventually(
            lambda: ops.get("deployments", selector="app.kubernetes.io/component=operator"),
            what="the operator Deployment",
        )
        account = deploy[0]["spec"]["template"]["spec"]["serviceAccountName"]
        assert ops.exists("serviceaccount", account)
        assert ops.exists("clusterrole", f"{release}-kubetune")

        def can(verb: str, resource: str, *extra: str) -> bool:
            user = f"system:serviceaccount:{namespace}:{account}"
            return ftj_crd.can_i(verb, resource, *extra, user=user, all_namespaces=True)

        for verb, resource in (
            ("create", "pytorchjobs.kubeflow.org"),
            ("watch", "finetunejobs.kubetune.io"),
            ("list", "pods"),
            ("create", "persistentvolumeclaims"),
            ("watch", "persistentvolumeclaims"),
            ("create", "rolebindings.rbac.authorization.k8s.io"),
            ("create", "events"),
        ):
            assert can(verb, resource), f"the operator needs to {verb} {resource}"
        assert can("patch", "finetunejobs.kubetune.io", "--subresource=status")
        for verb, resource in (
            ("get", "secrets"),
            ("list", "secrets"),
            ("delete", "pods"),
            ("delete", "persistentvolumeclaims"),
            ("watch", "configmaps"),
            ("create", "deployments.apps"),
            ("delete", "nodes"),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ):
            assert not can(verb, resource), f"the operator must not {verb} {resource}"
        # finetunejobs: read, and patched only for kopf's finalizer while a job is Queued (the
        # queue-position timer); never updated; their status only patched
        assert can("patch", "finetunejobs.kubetune.io")
        assert not can("update", "finetunejobs.kubetune.io")
        assert not can("update", "finetunejobs.kubetune.io", "--subresource=status")
        # The reporters' cluster-wide access comes with the chart (kept on uninstall).
        for kind in (
            "clusterrole",
            "validatingadmissionpolicy",
            "validatingadmissionpolicybinding",
        ):
            got = ftj_crd.get(kind, "kubetune-reporter")
            assert got["metadata"]["annotations"]["meta.helm.sh/release-name"] == release, kind
        # The API server's escalation check: the operator may bind each job's reporter account
        # to the reporters' ClusterRole only because it holds every permission that role grants
        # (it has no `bind` verb).
        user = f"system:serviceaccount:{namespace}:{account}"
        job = parse_job(make_job(**{"metadata.namespace": namespace}))
        rbac = [o for o in render(job) if o["kind"] in ("ServiceAccount", "RoleBinding")]
        for obj in rbac:  # no FineTuneJob owns them here (the garbage collector would take them)
            obj["metadata"].pop("ownerReferences", None)
        made = ops.run("create", f"--as={user}", "-f", "-", stdin=yaml.safe_dump_all(rbac))
        assert "rolebinding.rbac.authorization.k8s.io/job.kubetune-reporter created" in made, made

        # The OpenAI API reviews tokens and access and watches jobs (its cache); every change is
        # made with the caller's own token.
        api = f"system:serviceaccount:{namespace}:{release}-kubetune-api"
        for verb, resource in (
            ("create", "tokenreviews.authentication.k8s.io"),
            ("create", "subjectaccessreviews.authorization.k8s.io"),
            ("list", "finetunejobs.kubetune.io"),
            ("watch", "finetunejobs.kubetune.io"),
        ):
            assert ftj_crd.can_i(verb, resource, user=api, all_namespaces=True), (verb, resource)
        for verb, resource in (
            ("create", "finetunejobs.kubetune.io"),
            ("patch", "finetunejobs.kubetune.io"),
            ("delete", "finetunejobs.kubetune.io"),
            ("get", "secrets"),
            ("list", "pods"),
            ("impersonate", "users"),
            ("impersonate", "serviceaccounts"),
        ):
            assert not ftj_crd.can_i(verb, resource, user=api, all_namespaces=True), (
                verb,
                resource,
            )
    finally:
        subprocess.run([*base, "uninstall", release], check=True, capture_output=True, text=True)
    # crds.keep: uninstalling kubetune never deletes the users' FineTuneJobs.
    assert ftj_crd.exists("crd", "finetunejobs.kubetune.io")
    ftj_crd.run("delete", "namespace", namespace, "--wait=false", namespaced=False)
