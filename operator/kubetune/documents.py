"""Reading FineTuneJob files: one or more YAML documents, from a path or standard input."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from kubetune.api.job import FineTuneJob, InvalidJob, Problem, parse_job

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def expand_paths(args: tuple[str, ...] | list[str]) -> list[str]:
    """Files as given, folders as their manifest files (sorted, not recursive, like
    `kubectl apply -f DIR`); `-` stays standard input. FileNotFoundError names a missing path."""
    paths: list[str] = []
    for arg in args:
        path = Path(arg)
        if arg == "-" or path.is_file():
            paths.append(arg)
        elif path.is_dir():
            paths += sorted(str(p) for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
        else:
            raise FileNotFoundError(arg)
    return paths


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
