"""The `kubetune` command line: validate, render and inspect FineTuneJobs offline, run them,
look at them (status, watch, logs, report: kubetune.observe).

`render`, `validate` and `crd` need only the base install. `run` and `prepare` hand over to
the trainer package (torch), and `operator` to the operator runtime, in their own processes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kubetune import __version__
from kubetune.api.crd import crd_chart_template, crd_yaml
from kubetune.api.job import InvalidJob, reference_cycles
from kubetune.documents import expand_paths, load_jobs, read_text
from kubetune.observe.commands import register as register_observe_commands
from kubetune.render import RenderSettings, render, to_yaml

app = typer.Typer(
    name="kubetune",
    help="Fine-tune LLMs on Kubernetes: one FineTuneJob in, a trained model out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
FileArg = Annotated[
    str,
    typer.Argument(help="FineTuneJob YAML file (one or more documents); - reads standard input."),
]
FilesArg = Annotated[
    list[str],
    typer.Argument(
        help="FineTuneJob YAML files or folders (their *.yaml, *.yml and *.json files, like "
        "kubectl apply -f); - reads standard input."
    ),
]


def _jobs_or_exit(*files: str) -> list:  # type: ignore[type-arg]
    """Every FineTuneJob in the files, or exit: 2 when a file is missing, 1 when any job is
    invalid (after naming every problem in every file)."""
    try:
        paths = expand_paths(files)
    except FileNotFoundError as missing:
        err.print(f"{missing}: no such file or folder")
        raise typer.Exit(2) from None
    jobs, invalid = [], False
    for path in paths:
        try:
            jobs += load_jobs(read_text(path))
        except InvalidJob as problems:
            invalid = True
            for problem in problems.problems:
                err.print(f"{path}: {problem}", markup=False)
    for job, problem in reference_cycles(jobs):
        invalid = True
        err.print(f"{job.name}: {problem}", markup=False)
    if invalid:
        raise typer.Exit(1)
    if not jobs:
        err.print(f"{' '.join(files)}: no FineTuneJob found (no *.yaml, *.yml or *.json file)")
        raise typer.Exit(1)
    return jobs


def template_problem(job) -> str | None:  # type: ignore[no-untyped-def]
    """`spec.dataset.chatTemplate.jinja` that does not compile (in the dialect transformers
    renders), as a problem line; `prepare` refuses the same template."""
    template = job.spec.dataset and job.spec.dataset.chatTemplate.jinja
    if not template:
        return None
    from kubetune_trainer.data.jinja_check import template_error

    error = template_error(template)
    return f"spec.dataset.chatTemplate.jinja: does not compile: {error}" if error else None


@app.command()
def validate(files: FilesArg) -> None:
    """Check FineTuneJobs; exit 0 when valid, else 1 with one line per problem naming its field."""
    jobs = _jobs_or_exit(*files)
    problems = [(job, template_problem(job)) for job in jobs]
    for job, problem in problems:
        if problem:
            err.print(f"{job.name}: {problem}", markup=False)
    if any(problem for _, problem in problems):
        raise typer.Exit(1)
    for job in jobs:
        spec = job.spec
        objects = render(job)
        micro, world = spec.training.microBatchSize, spec.world_size
        fabric = spec.distributed.fabric
        opt_ins = spec.security_opt_ins
        err.print(
            f"[green]valid[/green] {job.name}: {spec.method.type}, "
            f"{spec.distributed.nodes} node(s) × {spec.procs_per_node} process(es), "
            f"effective batch {micro} × {spec.accumulation} × {world} = "
            f"{spec.effective_batch_size}, "
            + (f"fabric {fabric}, " if fabric != "auto" else "")
            + f"{len(objects)} objects"
            + (f", [yellow]loosens security: {', '.join(opt_ins)}[/yellow]" if opt_ins else "")
        )


@app.command("render")
def render_cmd(
    files: FilesArg,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
    image: Annotated[str | None, typer.Option(help="Default trainer image.")] = None,
) -> None:
    """Print every object the FineTuneJobs need (PVC, ConfigMap, RBAC, PyTorchJob)."""
    if output not in ("yaml", "json"):
        err.print(f"--output: expected yaml or json, got {output!r}")
        raise typer.Exit(2)
    settings = RenderSettings(trainer_image=image) if image else RenderSettings()
    objects = [o for job in _jobs_or_exit(*files) for o in render(job, settings)]
    if output == "json":
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    else:
        typer.echo(to_yaml(objects), nl=False)


@app.command()
def run(
    file: FileArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Workspace folder (default: ./runs/<first job's name>)."),
    ] = None,
) -> None:
    """Train FineTuneJobs on this machine: prepare, then torchrun with the job's topology.

    Relative dataset and model paths are read relative to FILE. Chained stages in one file run
    in order in the same workspace. Needs the trainer extra (pip install 'kubetune[trainer]').
    """
    from kubetune.local_run import run_job

    jobs = _jobs_or_exit(file)
    workspace = (output or Path("runs") / jobs[0].name).resolve()
    base = Path(file).resolve().parent if file != "-" else Path.cwd()
    console = Console(highlight=False)
    results = []
    for job in jobs:
        result = run_job(job, workspace, base, console)
        results.append(result)
        if not result.ok:
            raise typer.Exit(1)
    table = Table(title=f"workspace {workspace}")
    for column in ("job", "steps", "final loss", "wall time", "output"):
        table.add_column(column)
    for r in results:
        loss = f"{r.loss:.4f}" if r.loss is not None else "-"
        table.add_row(r.job, str(r.step or "-"), loss, f"{r.seconds:.0f}s", str(r.output))
    console.print(table)
    for r in results:
        if r.evaluation:
            console.print(f"{r.job}: {evaluation_line(r.evaluation)}")


def evaluation_line(evaluation: dict[str, Any]) -> str:
    """The held-out results in one line (the status holds them all)."""
    parts = [f"held-out loss {evaluation.get('loss')}"]
    parts.append(f"mean token accuracy {evaluation.get('meanTokenAccuracy')}")
    calls, base = evaluation.get("toolCalls"), evaluation.get("baselineToolCalls")
    if calls:
        before = f" (base {base.get('toolNameAccuracy')})" if base else ""
        parts.append(
            f"tool-name accuracy {calls.get('toolNameAccuracy')}{before}, "
            f"arguments exact {calls.get('argumentsExactMatch')}"
        )
    if evaluation.get("error"):
        parts.append(f"tool-call scoring failed: {evaluation['error']}")
    return "; ".join(parts)


@app.command()
def preview(
    file: FileArg,
    samples: Annotated[int, typer.Option("--samples", "-n", help="How many samples.")] = 3,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Workspace folder (default: ./runs/<first job's name>)."),
    ] = None,
) -> None:
    """Show the first training samples as the model will see them: the chat template applied,
    trained tokens highlighted, skipped records with their reason. Needs the trainer extra."""
    from kubetune.local_run import preview_job

    jobs = [job for job in _jobs_or_exit(file) if job.spec.dataset is not None]
    if not jobs:
        err.print(f"{file}: no FineTuneJob with a dataset")
        raise typer.Exit(1)
    workspace = (output or Path("runs") / jobs[0].name).resolve()
    base = Path(file).resolve().parent if file != "-" else Path.cwd()
    for job in jobs:
        if preview_job(job, workspace, base, samples) != 0:
            raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def operator(ctx: typer.Context) -> None:
    """Run the operator (kopf): --namespace NS (repeatable; default all), --trainer-image,
    --metrics-port, --health-port, --standalone. Needs the operator extra."""
    from kubetune.runtime.main import main as operator_main

    raise typer.Exit(operator_main(ctx.args))


@app.command()
def api(
    catalog: Annotated[Path, typer.Option(help="The model catalog (YAML; docs/openai-api.md).")],
    files_dir: Annotated[
        Path, typer.Option(help="Where uploaded files are kept (the files volume's mount).")
    ] = Path("/var/lib/kubetune/files"),
    files_claim: Annotated[
        str,
        typer.Option(help="The files volume's claim name, as FineTuneJobs read it (pvc://…)."),
    ] = "kubetune-files",
    namespace: Annotated[
        str | None,
        typer.Option(help="Namespace for callers that name none and are no service account."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig (default: in-cluster, then ~/.kube/config).")
    ] = None,
    max_file_bytes: Annotated[
        int, typer.Option(help="Largest upload accepted (larger: 413).")
    ] = 512 * 1024 * 1024,
    tls_cert: Annotated[str | None, typer.Option(help="Serve HTTPS with this certificate.")] = None,
    tls_key: Annotated[str | None, typer.Option(help="The certificate's key.")] = None,
    files_s3: Annotated[
        str | None,
        typer.Option(
            help="Keep uploaded files in this bucket prefix (s3://bucket/prefix) instead of "
            "--files-dir; the API's own keys come from the SDK's chain (AWS_ACCESS_KEY_ID, …)."
        ),
    ] = None,
    files_s3_endpoint: Annotated[
        str | None, typer.Option(help="The bucket's S3 endpoint (MinIO, Ceph, …).")
    ] = None,
    files_s3_region: Annotated[str | None, typer.Option(help="The bucket's region.")] = None,
    files_s3_path_style: Annotated[
        bool, typer.Option(help="Address the bucket as endpoint/bucket/key.")
    ] = False,
    files_s3_secret: Annotated[
        str | None,
        typer.Option(
            help="Secret with the keys FineTuneJobs read the files with, in each job's "
            "namespace (default: their ServiceAccount's identity)."
        ),
    ] = None,
) -> None:
    """Serve OpenAI's fine-tuning API over FineTuneJobs; callers authenticate with Kubernetes
    tokens (docs/openai-api.md). Needs the api extra."""
    from kubetune.openai_api.main import serve
    from kubetune_api.s3_spec import S3Connection, s3_problem

    if files_s3 and (problem := s3_problem(files_s3)):
        raise typer.BadParameter(f"{files_s3}: {problem}", param_hint="--files-s3")
    connection = S3Connection.model_validate(
        {
            "endpoint": files_s3_endpoint,
            "region": files_s3_region,
            "pathStyle": files_s3_path_style,
            "credentials": {"name": files_s3_secret} if files_s3_secret else None,
        }
    )
    serve(
        files_s3=files_s3,
        files_s3_connection=connection,
        host=host,
        port=port,
        catalog=catalog,
        files_dir=files_dir,
        files_claim=files_claim,
        namespace=namespace,
        kubeconfig=kubeconfig,
        max_file_bytes=max_file_bytes,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )


@app.command()
def crd(
    helm: Annotated[bool, typer.Option("--helm", help="As the chart's template.")] = False,
) -> None:
    """Print the FineTuneJob CustomResourceDefinition (generated from the API models)."""
    typer.echo(crd_chart_template() if helm else crd_yaml(), nl=False)


@app.command()
def version() -> None:
    """Print the kubetune version."""
    typer.echo(__version__)


register_observe_commands(app)  # status, watch, logs, report


def main() -> None:
    app()


if __name__ == "__main__":
    main()
