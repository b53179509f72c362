"""Looking at a job: `kubetune status`, `watch`, `logs` and `report`, against a cluster (the
FineTuneJob and its pods, through the kubeconfig) or a `kubetune run` folder.

    folder   a run folder as a FineTuneJob-shaped view (the same shape the cluster returns)
    cluster  the FineTuneJob, its watch, its pods' logs, through the kubernetes client
    screen   the one-screen summary (rich), from either view
    logs     rank-prefixed log lines, from either source
    commands the typer commands
"""
