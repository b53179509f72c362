"""The trainer refuses library versions below the floors that pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from kubetune_trainer.runtime import versions
from tests.support.factories import REPO


def declared_trainer_extra() -> dict[str, str]:
    """Each requirement of pyproject.toml's trainer extra: its name and its specifier."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["trainer"]
    return {(req := Requirement(r)).name: str(req.specifier) for r in extra}


TRANSFORMERS_FLOOR = declared_trainer_extra()["transformers"]  # ">=5.18"


def test_the_check_reads_exactly_the_trainer_extra_from_the_installed_metadata() -> None:
    reqs = versions.trainer_requirements(metadata.requires("kubetune") or [])
    assert {r.name: str(r.specifier) for r in reqs} == declared_trainer_extra()


def test_this_environment_meets_the_floors() -> None:
    assert versions.check() is None


def test_below_a_floor_or_missing_is_refused_with_the_fix() -> None:
    reqs = versions.trainer_requirements(metadata.requires("kubetune") or [])
    installed = {"transformers": "4.46.3", "peft": None}
    problems = versions.unmet(reqs, lambda name: installed.get(name, "99.0"))
    assert sorted(problems) == [
        f"peft is not installed (needs {next(r.specifier for r in reqs if r.name == 'peft')})",
        f"transformers 4.46.3 is installed; kubetune's trainer needs {TRANSFORMERS_FLOOR}",
    ]
    floor = TRANSFORMERS_FLOOR.removeprefix(">=")
    assert versions.unmet(reqs, lambda name: floor if name == "transformers" else "99") == []


def test_train_and_prepare_stop_at_start_up_naming_the_version(tmp_path: Path) -> None:
    # A real process whose installed transformers is made to look like 4.46: both entry points
    # exit 1 before reading their config, with the message and the fix.
    script = (
        "import sys; from importlib import metadata; real = metadata.version\n"
        "metadata.version = lambda n: '4.46.0' if n == 'transformers' else real(n)\n"
        "from kubetune_trainer.__main__ import main; sys.argv = ['x', sys.argv[1], '--config', 'none.yaml']\n"
        "sys.exit(main())\n"
    )
    for command in ("train", "prepare"):
        done = subprocess.run(
            [sys.executable, "-c", script, command], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 1, done.stderr
        needs = f"transformers 4.46.0 is installed; kubetune's trainer needs {TRANSFORMERS_FLOOR}"
        assert needs in done.stderr
        assert "uv sync --frozen --extra trainer" in done.stderr


def test_importing_a_stage_loads_no_training_library_before_its_version_check() -> None:
    """Every entry point and stage module imports, in a fresh interpreter, without loading the
    training stack: a stage's `main` checks the versions first, so a wrong install is a message
    naming the package, not a traceback from inside it."""
    stack = ["torch", "transformers", "peft", "trl", "datasets", "deepspeed", "bitsandbytes"]
    modules = [
        "kubetune_trainer.__main__",
        "kubetune_trainer.train",
        "kubetune_trainer.custom",
        "kubetune_trainer.stages.prepare",
        "kubetune_trainer.stages.preview",
        "kubetune_trainer.stages.train",
        "kubetune_trainer.stages.custom",
    ]
    script = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps([m for m in {stack!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    # the control: the same script reports torch once something imports it
    probe = script.replace("importlib.import_module(m)", "importlib.import_module(m); import torch")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.stdout.strip() == '["torch"]', loaded.stdout
