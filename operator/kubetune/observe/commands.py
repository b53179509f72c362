"""`kubetune status|watch|logs|report JOB`: JOB is a `kubetune run` folder (a workspace, a job
folder or its outputs) when such a path exists, else the name of a FineTuneJob on the cluster
of the current kubeconfig context (`--namespace`, else the context's namespace)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from kubetune.observe.folder import FINAL, folder_view
from kubetune.observe.logs import CONTAINERS, folder_lines
from kubetune.observe.screen import screen
from kubetune.yamlio import dump

JobArg = Annotated[
    str, typer.Argument(help="A FineTuneJob's name, or a `kubetune run` folder (--output).")
]
Namespace = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]
Output = Annotated[str | None, typer.Option("--output", "-o", help="json or yaml.")]
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _is_folder(job: str) -> bool:
    return Path(job).exists()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(message, markup=False)
    return typer.Exit(code)


def view_of(job: str, namespace: str | None) -> dict[str, Any]:
    """The FineTuneJob (from the cluster) or its stand-in (from a run folder)."""
    from kubetune_trainer.report.run_folder import NotARunFolder

    if _is_folder(job):
        try:
            return folder_view(Path(job))
        except NotARunFolder as problem:
            raise _fail(str(problem)) from None
    from kubetune.observe.cluster import ClusterError, get_job

    try:
        return get_job(job, namespace)
    except ClusterError as problem:
        raise _fail(str(problem)) from None


def _print(view: dict[str, Any], output: str | None) -> None:
    if output == "json":
        typer.echo(json.dumps(view, indent=2))
    elif output == "yaml":
        typer.echo(dump(view), nl=False)
    else:
        Console(highlight=False).print(screen(view))


def _check_output(output: str | None) -> None:
    if output not in (None, "json", "yaml"):
        raise _fail(f"--output: expected json or yaml, got {output!r}")


def status(job: JobArg, namespace: Namespace = None, output: Output = None) -> None:
    """Show a job in one screen: phase, progress, latest metrics, a loss chart, checkpoints,
    evaluation, outputs. `-o json|yaml`: the FineTuneJob object."""
    _check_output(output)
    _print(view_of(job, namespace), output)


def _phase(view: dict[str, Any]) -> str:
    return str((view.get("status") or {}).get("phase") or "Pending")


def watch(job: JobArg, namespace: Namespace = None, output: Output = None) -> None:
    """The status screen, live, until the job ends; exits 0 when it succeeded, 1 when it
    failed. `-o json|yaml`: one document per change."""
    _check_output(output)
    if _is_folder(job):
        from kubetune.observe.folder import folder_changes

        changes = folder_changes(Path(job))
    else:
        from kubetune.observe.cluster import ClusterError, job_changes

        try:
            changes = job_changes(job, namespace)
        except ClusterError as problem:
            raise _fail(str(problem)) from None
    view: dict[str, Any] = {}
    if output:
        for view in changes:
            _print(view, output)
            if _phase(view) in FINAL:
                break
    else:
        with Live(console=Console(highlight=False), auto_refresh=False) as live:
            for view in changes:
                live.update(screen(view), refresh=True)
                if _phase(view) in FINAL:
                    break
    raise typer.Exit(FINAL.get(_phase(view), 1))


def logs(
    job: JobArg,
    namespace: Namespace = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the job ends.")
    ] = False,
    rank: Annotated[int | None, typer.Option(help="Only this node's (pod's) rank.")] = None,
    container: Annotated[
        str | None, typer.Option(help="prepare or pytorch (default both).")
    ] = None,
) -> None:
    """Every node's log lines, each prefixed by its node's rank (rank 1, its prepare: `rank 1
    prepare`, in brackets); -f follows them, across pod restarts, until the job ends."""
    if container not in (None, *CONTAINERS):
        raise _fail(f"--container: expected prepare or pytorch, got {container!r}")
    if _is_folder(job):
        from kubetune_trainer.report.run_folder import job_folders

        job_dir = job_folders(Path(job))[0]
        lines = folder_lines(
            job_dir, rank, container, follow, lambda: _phase(folder_view(job_dir)) in FINAL
        )
    else:
        from kubetune.observe.cluster import ClusterError, pod_lines

        try:
            for line in pod_lines(job, namespace, rank, container, follow):
                typer.echo(line)
        except ClusterError as problem:
            raise _fail(str(problem)) from None
        return
    for line in lines:
        typer.echo(line)


def report(
    job: JobArg,
    namespace: Namespace = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="For a cluster's job: the file (default ./JOB.html)."),
    ] = None,
) -> None:
    """Write report.html — charts, evaluation, checkpoints, data, spec; one file that opens
    offline — and print where: for a run folder, into each job's outputs; for a FineTuneJob on
    the cluster, from its status (downsampled history, no data report) into --output."""
    from kubetune_trainer.report import write_report
    from kubetune_trainer.report.bundle import ReportUnavailable
    from kubetune_trainer.report.run_folder import NotARunFolder

    try:
        if _is_folder(job):
            for written in write_report(Path(job)):
                typer.echo(str(written))
            return
        from kubetune.observe.cluster_report import write_cluster_report

        target = output or Path(f"{job}.html")
        typer.echo(str(write_cluster_report(view_of(job, namespace), target)))
    except (NotARunFolder, ReportUnavailable) as problem:
        raise _fail(str(problem)) from None


def register(app: typer.Typer) -> None:
    for command in (status, watch, logs, report):
        app.command()(command)
