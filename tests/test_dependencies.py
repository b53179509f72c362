"""Every library a package imports is declared by the install that runs it.

The trainer image and `make demo` install the `trainer` extra (plus `gguf` in the image); the
operator image the `operator` and `api` extras. A library that only the test environment has
(the `dev` extra) passes every test and fails in the image: `training.objective: dpo` imported TRL, which
only `dev` declared, and a DPO job in kind failed with ModuleNotFoundError. This reads the
imports themselves (every `import`, also inside functions) and maps them to distributions
with the installed metadata.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.factories import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
OWN = {"kubetune", "kubetune_trainer", "kubetune_api"}
# Distributions that come with one we declare, at the exact version it pins.
PART_OF = {"pydantic-core": "pydantic"}


def declared(*extras: str) -> set[str]:
    requires = list(PYPROJECT["dependencies"])
    for extra in extras:
        requires += PYPROJECT["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(r).name) for r in requires}


def imported_modules(package: Path) -> dict[str, str]:
    """Top-level third-party module → the first file importing it."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def undeclared(package: Path, allowed: set[str]) -> dict[str, str]:
    providers = metadata.packages_distributions()
    missing = {}
    for module, where in imported_modules(package).items():
        dists: set[str] = {canonicalize_name(d) for d in providers.get(module, [])}
        dists |= {PART_OF[d] for d in dists if d in PART_OF}
        if not dists:
            missing[module] = f"{where}: no installed distribution provides it"
        elif not dists & allowed:
            missing[module] = f"{where}: from {sorted(dists)}, which the install does not declare"
    return missing


@pytest.mark.parametrize(
    ("package", "extras"),
    [
        ("trainer/kubetune_trainer", ("trainer", "gguf")),
        # the contract: the base install only (pydantic, jinja2), as both images and the CLI run it
        ("contract/kubetune_api", ()),
        # `kubetune run` imports the training stack only after checking for it (its error names
        # `--extra trainer`); the operator's own modules never do (the import-linter contracts).
        # The operator image also installs the api extra (`kubetune api`).
        ("operator/kubetune", ("operator", "trainer", "api")),
    ],
)
def test_every_import_is_declared_by_the_install_that_runs_it(
    package: str, extras: tuple[str, ...]
) -> None:
    assert undeclared(REPO / package, declared(*extras)) == {}
