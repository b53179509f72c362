"""Reading FineTuneJob files: one or more YAML documents, from a path or standard input."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from kubetune.api.job import FineTuneJob, InvalidJob, Problem, parse_job


def read_text(file: str) -> str:
    return sys.stdin.read() if file == "-" else Path(file).read_text()


def load_documents(text: str) -> list[Any]:
    """Every non-empty YAML document; a syntax error becomes an InvalidJob."""
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise InvalidJob([Problem("<document>", f"not valid YAML: {err}")]) from None


def load_jobs(text: str) -> list[FineTuneJob]:
    """All FineTuneJobs in a text, or InvalidJob naming every problem in every document."""
    docs = load_documents(text)
    if not docs:
        raise InvalidJob([Problem("<document>", "no FineTuneJob found (the file is empty)")])
    jobs: list[FineTuneJob] = []
    problems: list[Problem] = []
    for index, doc in enumerate(docs):
        try:
            jobs.append(parse_job(doc))
        except InvalidJob as err:
            prefix = _label(doc, index) if len(docs) > 1 else ""
            problems += [Problem(prefix + p.path, p.message) for p in err.problems]
    if problems:
        raise InvalidJob(problems)
    return jobs


def _label(doc: Any, index: int) -> str:
    name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
    return f"{name or f'document {index + 1}'}: "
