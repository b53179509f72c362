"""The FineTuneJob API (`kubetune.io/v1alpha1`): one typed model, the CRD generated from it."""

from kubetune.api.job import FineTuneJob, InvalidJob, Problem, parse_job
from kubetune.api.spec import FineTuneJobSpec
from kubetune_api.resource import API_VERSION, KIND
from kubetune_api.status import FineTuneJobStatus

__all__ = [
    "API_VERSION",
    "KIND",
    "FineTuneJob",
    "FineTuneJobSpec",
    "FineTuneJobStatus",
    "InvalidJob",
    "Problem",
    "parse_job",
]
