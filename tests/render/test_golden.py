"""Golden files are the review artifact of rendering: any change to what the operator creates
shows up as a readable YAML diff. Regenerate with `KUBETUNE_UPDATE_GOLDEN=1 pytest tests/render`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubetune.render import to_yaml
from tests.factories import EXAMPLES
from tests.render.helpers import GOLDEN, render_example


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_matches_golden(example: Path) -> None:
    text = to_yaml(render_example(example))
    golden = GOLDEN / f"{example.stem}.yaml"
    if os.environ.get("KUBETUNE_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {example.name}: run with KUBETUNE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs: review, then regenerate"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_is_deterministic(example: Path) -> None:
    assert to_yaml(render_example(example)).encode() == to_yaml(render_example(example)).encode()


def test_every_golden_file_has_an_example() -> None:
    stems = {p.stem for p in EXAMPLES}
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == stems
