"""The FineTuneJob → TrainerConfig step: the one contract between operator and trainer.

Used by rendering (paths inside the pod) and by `kubetune run` (paths on this machine), so a
job trains the same way in both places.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from kubetune.api.job import FineTuneJob
from kubetune.render.layout import Layout
from kubetune_api.config import Paths, Topology, TrainerConfig
from kubetune_api.s3_spec import UpstreamOutputs


def claims_read(job: FineTuneJob, layout: Layout) -> dict[str, PurePosixPath]:
    """The claims besides the workspace that the trainer reads (pvc:// model and dataset
    sources, a chained stage's claim): what the pod template mounts read-only."""
    spec = job.spec
    sources = [s.source for s in spec.dataset.all_sources] if spec.dataset else []
    if spec.model.source is not None:
        sources.append(spec.model.source)
    sources = [s for s in sources if s.startswith("pvc://")]
    ref = spec.model.fromJob
    return layout.claims_read(sources, [ref.claimName] if ref and ref.claimName else [])


def trainer_config(
    job: FineTuneJob, layout: Layout, upstream: UpstreamOutputs | None = None
) -> TrainerConfig:
    spec = job.spec
    model_path = None
    if spec.model.fromJob is not None:
        ref = spec.model.fromJob
        model_path = layout.from_job(ref.name, ref.artifact, ref.claimName)
    elif spec.model.source is not None:
        model_path = layout.resolve(spec.model.source)
    datasets = [layout.resolve(s.source) for s in spec.dataset.all_sources] if spec.dataset else []
    return TrainerConfig(
        jobName=job.name,
        namespace=job.metadata.namespace,
        model=spec.model,
        dataset=spec.dataset,
        method=spec.method,
        training=spec.training,
        output=spec.output,
        tracking=spec.tracking,
        evaluation=spec.evaluation,
        entrypoint=spec.entrypoint,
        s3=spec.s3,
        rewards=spec.rewards or None,
        upstreamOutputs=upstream,
        topology=Topology(
            nodes=spec.distributed.nodes,
            procsPerNode=spec.procs_per_node,
            gpus=spec.distributed.gpusPerNode > 0,
            strategy=spec.distributed.strategy,
            fabric=spec.distributed.fabric,
            preflight=spec.distributed.preflight,
        ),
        paths=Paths(
            workspace=str(layout.workspace),
            cache=str(layout.cache()),
            job=str(layout.job_dir(job.name)),
            output=str(layout.output_dir(job.name, spec.output.path)),
            model=str(model_path) if model_path is not None else None,
            datasets=[str(p) if p is not None else None for p in datasets],
        ),
    )
