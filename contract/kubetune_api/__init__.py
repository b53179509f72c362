"""The contract between kubetune's operator and its trainer, with nothing of either.

The FineTuneJob's spec sections and status fields, the trainer config the operator renders into
the job's ConfigMap (`config.TrainerConfig`), the Kubernetes syntax both sides check, the
resource's group/version/kind, and the condition types and reasons. It needs only the base
install (pydantic; PyYAML for the trainer config's file): the operator image, the trainer image
and `kubetune run` all import it, and import-linter keeps it from importing either side
(pyproject.toml).
"""
