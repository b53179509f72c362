"""The test tiers: which folder holds which tier, their order in a run, and what a tier does
when what it needs cannot be had.

A tier is chosen by the folder a test lives in (tests/conftest.py marks every test), so
`pytest -m unit` is the two-minute loop and `pytest -m "not kind"` leaves out one tier. `make
test` runs all of them, fastest first, so a unit failure shows in minutes.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# Fastest first: the order tests run in (a stable sort by tier, then by file).
ORDER = ("unit", "trainer", "bench", "cluster", "e2e", "faults", "images", "kind")
DESCRIPTIONS = {
    "unit": "no torch, no cluster: the API, rendering, runtime tables, command line, chart",
    "trainer": "the training stack on CPU (torch, transformers, peft, TRL, DeepSpeed, llama.cpp)",
    "bench": "the benchmarks' CPU presets, run as tests",
    "cluster": "the real local control plane (hack/local-cluster) and the operator as a process",
    "e2e": "the whole chain on the local control plane, pods run as local processes",
    "faults": "chaos: killed operators, training containers, full volumes, lost API servers",
    "images": "the Dockerfile's images, built and run with a Docker engine",
    "kind": "the images installed with Helm in a kind cluster (a Docker engine)",
}
# Folders (relative to tests/) → tier; a file listed here overrides its folder.
FOLDERS = {
    "api": "unit",
    "render": "unit",
    "runtime": "unit",
    "cli": "unit",
    "chart": "unit",
    "openai_api": "unit",
    "": "unit",  # tests/test_*.py: the repository's own files
    "trainer": "trainer",
    "bench": "bench",
    "cluster": "cluster",
    "e2e": "e2e",
    "images": "images",
}
FILES = {
    "test_dependencies.py": "trainer",  # reads the installed metadata of every extra
    "test_tier_runs.py": "trainer",  # collects the whole suite, torch's importers included
    "cluster/test_faults.py": "faults",
    "e2e/test_training_faults.py": "faults",
}


def tier_of(relative: str) -> str:
    """The tier of a test file, from its path relative to tests/."""
    if relative in FILES:
        return FILES[relative]
    folder = relative.rsplit("/", 1)[0] if "/" in relative else ""
    return FOLDERS[folder.split("/")[0]]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(tier: str, reason: str) -> NoReturn:
    """What a tier does when what it needs cannot be had: on a developer's machine its tests
    skip, saying why; in CI the run fails, since a skipped tier has hidden missing coverage."""
    if in_ci():
        pytest.fail(f"the {tier} tier must run in CI, but cannot: {reason}", pytrace=False)
    pytest.skip(
        f"{tier} tier: {reason} (leave it out with -m 'not {tier}')", allow_module_level=True
    )
