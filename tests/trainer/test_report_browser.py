"""report.html in a real browser, and what a real run leaves for `kubetune status|watch|logs`.

Debian's Chromium opens the report the trainer wrote at the end of a tiny run (the file, no
server) and draws it: every chart has a point per logged value — counted here from
metrics.jsonl, not from the report's code — the console has no error, and the page asks for
nothing but itself. The screenshot is the README's: `KUBETUNE_UPDATE_SCREENSHOT=1` writes it to
docs/images/report.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kubetune.cli import app
from tests.support.chromium import Page, chromium_binary
from tests.support.factories import REPO
from tests.support.run_folders import write_run_folder
from tests.support.tiny_run import STEPS, TrainedRun

SCREENSHOT = REPO / "docs" / "images" / "report.png"
# chart id → the metrics.jsonl keys it draws (one point per line that has the key)
CHART_KEYS = {
    "loss": ("loss", "eval_loss"),
    "accuracy": ("eval_mean_token_accuracy", "rewards/accuracies", "eval_rewards/accuracies"),
    "rewards": ("rewards/chosen", "rewards/rejected", "rewards/margins", "eval_rewards/margins"),
    "lr": ("learning_rate",),
    "throughput": ("tokens_per_second",),
    "grad-norm": ("grad_norm",),
}
RENDERED = """new Promise((resolve) => {
  const state = () => document.body.dataset.charts;
  if (state() !== "pending") return resolve(state());
  new MutationObserver((_, observer) => {
    if (state() !== "pending") { observer.disconnect(); resolve(state()); }
  }).observe(document.body, {attributes: true});
})"""
POINTS = """Object.fromEntries([...document.querySelectorAll("div[id^=chart-]")].map(
  (chart) => [chart.id.slice(6), chart.querySelectorAll("g.mark-symbol.role-mark path").length]))"""


@pytest.fixture
def page(tmp_path: Path) -> Any:
    if chromium_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium: make test installs it (hack/chromium.sh)")
        pytest.skip("no chromium: run hack/chromium.sh (apt-get install chromium)")
    opened = Page(tmp_path / "profile")
    yield opened
    opened.close()


def expected_points(metrics: Path) -> dict[str, int]:
    lines = [json.loads(x) for x in metrics.read_text().splitlines()]
    counts = {
        c: sum(1 for line in lines for k in keys if k in line) for c, keys in CHART_KEYS.items()
    }
    return {chart: n for chart, n in counts.items() if n}


def drawn(page: Page, report: Path) -> dict[str, int]:
    page.open(report.as_uri())
    assert page.evaluate(RENDERED) == "rendered"
    points: dict[str, int] = page.evaluate(POINTS)
    assert page.errors() == []
    assert page.requests() == [report.as_uri()]  # nothing fetched: no CDN, no font, no data
    return points


def test_the_report_of_a_run_draws_every_chart_offline(
    tiny_trained_run: TrainedRun, page: Page, tmp_path: Path
) -> None:
    output = tiny_trained_run.job_dir / "output"
    report = output / "report.html"
    expected = expected_points(output / "metrics.jsonl")
    assert expected["loss"] > STEPS // 2 and expected["accuracy"] >= 2  # train and held-out
    assert drawn(page, report) == expected
    text = report.read_text()
    assert "class='phase Succeeded'" in text  # written by the trainer before the run ends
    # the preview's first samples: each assistant reply trained through its end-of-turn marker
    assert re.search(r"background-color: #008000[^>]*>[^<]+&lt;\|im_end\|&gt;</span>", text)
    assert "packing efficiency" in text and "checkpoint-12" in text
    page.screenshot(tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("KUBETUNE_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "report.png", SCREENSHOT)


def test_a_preference_run_draws_its_rewards(tmp_path: Path, page: Page) -> None:
    """`kubetune report` on a folder holding a DPO history (written by hand: no second run)."""
    job_dir = write_run_folder(tmp_path, dpo=True, steps=30)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = Path(result.output.strip())
    assert report == job_dir / "output" / "report.html"
    points = drawn(page, report)
    assert points == expected_points(job_dir / "metrics.jsonl")
    assert points["rewards"] == 3 * 7 and "throughput" in points


def test_metrics_jsonl_matches_the_trainers_own_log_history(tiny_trained_run: TrainedRun) -> None:
    """Every loss and eval loss the Trainer kept in the last checkpoint's trainer_state.json
    is in metrics.jsonl at the same step, and the outputs carry the same file."""
    job_dir = tiny_trained_run.job_dir
    state = json.loads(
        (job_dir / "checkpoints" / f"checkpoint-{STEPS}" / "trainer_state.json").read_text()
    )
    lines = [json.loads(x) for x in (job_dir / "metrics.jsonl").read_text().splitlines()]
    for entry in state["log_history"]:
        for key in ("loss", "eval_loss", "grad_norm", "learning_rate"):
            if key in entry:
                assert any(
                    x["step"] == entry["step"] and x.get(key) == entry[key] for x in lines
                ), (key, entry)
    assert (job_dir / "output" / "metrics.jsonl").read_text() == (
        job_dir / "metrics.jsonl"
    ).read_text()


def test_status_logs_and_watch_read_the_run_folder(tiny_trained_run: TrainedRun) -> None:
    runner = CliRunner()
    folder = str(tiny_trained_run.workspace)
    status = runner.invoke(app, ["status", folder, "-o", "json"])
    assert status.exit_code == 0, status.output
    view = json.loads(status.output)["status"]
    assert view["phase"] == "Succeeded" and view["progress"]["step"] == STEPS
    lines = [
        json.loads(x) for x in (tiny_trained_run.job_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [p["step"] for p in view["metrics"]["points"]] == sorted({x["step"] for x in lines})
    assert view["outputs"]["report"].endswith("output/report.html")
    logs = runner.invoke(app, ["logs", folder]).output.splitlines()
    assert logs and all(line.startswith(("[rank 0] ", "[rank 0 prepare] ")) for line in logs)
    assert any(f"kubetune step {STEPS}/{STEPS}" in line for line in logs)
    assert runner.invoke(app, ["watch", folder, "-o", "json"]).exit_code == 0
