"""The version has one home (pyproject.toml); every place that shows it must agree."""

from __future__ import annotations

import tomllib

import yaml

import kubetune
import kubetune_trainer
from kubetune.render import RenderSettings
from tests.support.factories import REPO


def test_every_place_shows_the_pyproject_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((REPO / "charts" / "kubetune" / "Chart.yaml").read_text())
    values = yaml.safe_load((REPO / "charts" / "kubetune" / "values.yaml").read_text())
    tiny = yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())
    shown = {
        "kubetune.__version__": kubetune.__version__,
        "kubetune_trainer.__version__": kubetune_trainer.__version__,
        "Chart.yaml version": chart["version"],
        "Chart.yaml appVersion": chart["appVersion"],
        "values.yaml trainerImage tag": values["trainerImage"].rpartition(":")[2],
        "default trainer image tag": RenderSettings().trainer_image.rpartition(":")[2],
        "examples/tiny.yaml image tag": tiny["spec"]["image"].rpartition(":")[2],
    }
    assert {place: v for place, v in shown.items() if v != version} == {}
