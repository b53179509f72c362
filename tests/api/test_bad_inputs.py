"""A table of bad FineTuneJobs, spread over every section: each gets a field-level error.

Each case names the field path the error must start with. Nothing is rendered for any of
them (rendering only ever sees a parsed, valid job). The same table runs through the real
API server in the cluster tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kubetune.api import InvalidJob, parse_job
from kubetune.api.spec import FineTuneJobSpec
from kubetune.cli import app
from tests.support.bad_inputs import CASES
from tests.support.factories import make_job


def test_every_field_of_the_spec_has_a_bad_case() -> None:
    """The table reaches every field of FineTuneJobSpec (read from the model, so a new field
    without a bad case fails here) and the document's own fields."""
    covered = {
        path.split(".")[1].split("[")[0] for _, _, path, _ in CASES if path.startswith("spec.")
    }
    assert set(FineTuneJobSpec.model_fields) - covered == set()
    assert {"apiVersion", "kind", "metadata"} <= {path.split(".")[0] for _, _, path, _ in CASES}


@pytest.mark.parametrize(("doc", "path", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_field(doc: dict[str, Any], path: str, word: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    problems = caught.value.problems
    matching = [p for p in problems if p.path == path]
    assert matching, f"expected a problem at {path}, got: {[str(p) for p in problems]}"
    assert any(word.lower() in p.message.lower() for p in matching), [str(p) for p in matching]


def test_valid_base_job_parses() -> None:
    job = parse_job(make_job())
    assert job.spec.method.type == "lora"
    assert job.spec.training.maxLength == 2048


def test_every_problem_is_reported_at_once() -> None:
    doc = make_job(**{"spec.training.maxLength": 8, "spec.distributed.nodes": 0, "spec.foo": 1})
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    paths = {p.path for p in caught.value.problems}
    assert {"spec.training.maxLength", "spec.distributed.nodes", "spec.foo"} <= paths


def test_batch_arithmetic_message_shows_the_numbers() -> None:
    doc = make_job(
        gpus=8, **{"spec.training.globalBatchSize": 100, "spec.training.microBatchSize": 4}
    )
    with pytest.raises(InvalidJob) as caught:
        parse_job(doc)
    (problem,) = caught.value.problems
    assert problem.message.endswith("(got 100; 4 × 8 = 32, try 96 or 128)")


def test_nothing_renders_for_any_bad_job(tmp_path: Path) -> None:
    """`kubetune render` (and so `run`) refuses each job of the table with the field named, and
    prints no object."""
    runner = CliRunner()
    for case_id, doc, path, _ in CASES:
        file = tmp_path / f"{case_id}.yaml"
        file.write_text(yaml.safe_dump(doc))
        result = runner.invoke(app, ["render", str(file)])
        assert result.exit_code == 1, case_id
        assert "kind:" not in result.stdout, case_id
        assert f"{path}:" in result.output or path in ("kind", "apiVersion"), (
            case_id,
            result.output,
        )
