"""The FineTuneJob object, and turning a YAML document into one or a list of problems."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from kubetune.api.rules import broken_object_rules, broken_rules
from kubetune.api.spec import FineTuneJobSpec
from kubetune_api.k8s_syntax import PATTERN_HINTS
from kubetune_api.schema import Model
from kubetune_api.status import FineTuneJobStatus

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class ObjectMeta(Model):
    """The parts of metadata kubetune reads; the rest of what a cluster adds is ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class FineTuneJob(Model):
    """A fine-tuning run."""

    apiVersion: Literal["kubetune.io/v1alpha1"]
    kind: Literal["FineTuneJob"]
    metadata: ObjectMeta
    spec: FineTuneJobSpec
    status: FineTuneJobStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidJob(ValueError):
    """A FineTuneJob that cannot run; `problems` names every offending field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_job(doc: Any) -> FineTuneJob:
    """Validate a FineTuneJob document: schema, then cross-field rules, then naming.

    Raises InvalidJob with one Problem per offending field; nothing partial is returned.
    """
    if not isinstance(doc, dict):
        raise InvalidJob([Problem("<document>", f"expected a mapping, got {type(doc).__name__}")])
    try:
        job = FineTuneJob.model_validate(doc)
    except ValidationError as err:
        raise InvalidJob([_problem(e) for e in err.errors()]) from None
    problems = [Problem(r.path, r.explain(job.spec)) for r in broken_rules(job.spec)]
    problems += [Problem(r.path, r.explain(job)) for r in broken_object_rules(job)]
    if not DNS1035.match(job.name) or len(job.name) > 63:
        problems.insert(
            0,
            Problem(
                "metadata.name",
                f"{job.name!r} is not a DNS-1035 label: use at most 63 lowercase letters, "
                "digits and '-', starting with a letter and ending with a letter or digit",
            ),
        )
    if problems:
        raise InvalidJob(problems)
    return job


def _problem(error: Any) -> Problem:
    # Pydantic's tagged-union and function-validator segments are not fields; drop them.
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif part not in {
            "str",
            "int",
            "constrained-str",
            "constrained-int",
            "function-after[...]",
        }:
            parts.append(str(part))
    path = ".".join(parts) or "<document>"
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        msg = "unknown field (check the spelling; `kubetune crd` lists every field)"
    elif kind == "literal_error":
        msg = f"{msg}, got {error['input']!r}"
    elif kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        hint = PATTERN_HINTS.get(pattern, f"does not match the pattern {pattern}")
        msg = f"{error['input']!r} {hint}"
    elif kind == "missing":
        msg = "required field is missing"
    return Problem(path, msg)


def reference_cycles(jobs: list[FineTuneJob]) -> list[tuple[FineTuneJob, Problem]]:
    """Stages among `jobs` whose `model.fromJob` chain leads back to themselves, one problem per
    job on a cycle. Such stages would each wait for the other to succeed, forever. (A job naming
    itself is refused by parse_job already.) References to jobs not among `jobs` are not
    checked: they may exist in the cluster."""
    by_key = {(job.namespace, job.name): job for job in jobs}

    def next_of(job: FineTuneJob) -> FineTuneJob | None:
        ref = job.spec.model.fromJob
        return by_key.get((job.namespace, ref.name)) if ref else None

    problems: list[tuple[FineTuneJob, Problem]] = []
    reported: set[tuple[str, str]] = set()
    for start in jobs:
        path: list[FineTuneJob] = []
        job: FineTuneJob | None = start
        while job is not None and all(job is not seen for seen in path):
            path.append(job)
            job = next_of(job)
        if job is None or (job.namespace, job.name) in reported:
            continue
        cycle = path[next(i for i, seen in enumerate(path) if seen is job) :]
        names = " → ".join([*(j.name for j in cycle), cycle[0].name])
        for member in cycle:
            reported.add((member.namespace, member.name))
            problems.append(
                (
                    member,
                    Problem(
                        "spec.model.fromJob.name",
                        f"the stages {names} start from each other's output, so none can "
                        "start: break the cycle (a first stage needs model.source)",
                    ),
                )
            )
    return problems
