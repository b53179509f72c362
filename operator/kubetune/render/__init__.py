"""Pure rendering: a FineTuneJob in, the Kubernetes objects that run it out.

`render(job, settings)` reads nothing from the environment, the clock or the cluster; the
same input gives byte-identical output (golden-file tested). The operator applies the result.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from kubetune.api.job import FineTuneJob
from kubetune.render.layout import Layout
from kubetune.render.metadata import Obj, object_meta
from kubetune.render.names import config_map_name
from kubetune.render.pod import CONFIG_FILE, render_pod_template
from kubetune.render.pytorchjob import render_pytorchjob
from kubetune.render.rbac import render_rbac
from kubetune.render.settings import RenderSettings
from kubetune.render.storage import render_workspace_pvc, workspace_claim
from kubetune.render.trainer_config import claims_read, trainer_config
from kubetune.yamlio import dump_all
from kubetune_api.s3_spec import UpstreamOutputs

__all__ = ["RenderSettings", "cluster_layout", "render", "to_yaml"]


def cluster_layout(job: FineTuneJob, settings: RenderSettings) -> Layout:
    return Layout(PurePosixPath(settings.workspace_mount), own_claim=workspace_claim(job))


def render(
    job: FineTuneJob,
    settings: RenderSettings | None = None,
    upstream: UpstreamOutputs | None = None,
) -> list[Obj]:
    """Every object the FineTuneJob needs, in apply order. `upstream`: where the stage it starts
    from uploaded its outputs (runtime.upstream reads it from that stage's status)."""
    settings = settings or RenderSettings()
    layout = cluster_layout(job, settings)
    config = trainer_config(job, layout, upstream)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(job, config_map_name(job.name), "config"),
        "data": {CONFIG_FILE: config.dump()},
    }
    pvc = render_workspace_pvc(job, settings)
    template = render_pod_template(job, layout, settings, claims_read(job, layout), upstream)
    return [
        *([pvc] if pvc else []),
        config_map,
        *render_rbac(job),
        render_pytorchjob(job, template),
    ]


def to_yaml(objects: list[Obj]) -> str:
    return dump_all(objects)
