"""Golden files are the review artifact of rendering: any change to what the operator creates
shows up as a readable YAML diff. Regenerate with `KUBETUNE_UPDATE_GOLDEN=1 pytest tests/render`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.render import to_yaml
from tests.support.factories import EXAMPLES
from tests.support.golden import GOLDEN, assert_golden, render_example


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_matches_golden(example: Path) -> None:
    assert_golden(GOLDEN / f"{example.stem}.yaml", to_yaml(render_example(example)), example.name)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_is_deterministic(example: Path) -> None:
    assert to_yaml(render_example(example)).encode() == to_yaml(render_example(example)).encode()


def test_every_golden_file_has_an_example() -> None:
    stems = {p.stem for p in EXAMPLES}
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == stems
