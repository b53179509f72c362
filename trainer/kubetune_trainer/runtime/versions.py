"""The trainer refuses to start on library versions it cannot train correctly with.

The floors are the `trainer` extra's own requirements in the installed package's metadata
(pyproject.toml is their one home), so the check and the install can never disagree. Below
them the trainer would run and be silently wrong: transformers 4.x reads `warmup_steps=0.03`
as 0.03 steps, not 3% of the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

FIX = (
    "install the locked versions: `uv sync --frozen --extra trainer` "
    "(or pip install 'kubetune[trainer]')"
)


def trainer_requirements(requires: Iterable[str]) -> list[Requirement]:
    """The requirements that the `trainer` extra adds (markers evaluated for that extra)."""
    reqs = [Requirement(r) for r in requires]
    return [
        r
        for r in reqs
        if r.marker is not None
        and r.marker.evaluate({"extra": "trainer"})
        and not r.marker.evaluate({"extra": ""})
    ]


def unmet(requirements: Iterable[Requirement], installed: Callable[[str], str | None]) -> list[str]:
    """One line per requirement the installed versions do not meet."""
    lines = []
    for req in requirements:
        version = installed(req.name)
        if version is None:
            lines.append(f"{req.name} is not installed (needs {req.specifier})")
        elif not req.specifier.contains(Version(version), prereleases=True):
            lines.append(
                f"{req.name} {version} is installed; kubetune's trainer needs {req.specifier}"
            )
    return lines


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check(distribution: str = "kubetune") -> str | None:
    """None when the installed libraries meet the trainer's floors, else the message to stop
    with."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return None  # run from a source tree without an install: nothing declares the floors
    problems = unmet(trainer_requirements(requires), _installed)
    if not problems:
        return None
    return (
        "kubetune trainer: cannot train correctly with these versions:\n  "
        + "\n  ".join(problems)
        + f"\n{FIX}"
    )


def require() -> None:
    """Stop the process (exit 1, the message on stderr) when the floors are not met."""
    refused = check()
    if refused:
        print(refused, file=sys.stderr)
        raise SystemExit(1)
