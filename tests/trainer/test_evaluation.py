"""LoRA on two local "nodes" (torchrun, gloo) in one real job on CPU: it learns, exports an
adapter that carries its template, measured the network before the first step; and its
evaluation: eval loss and mean token accuracy at evalSteps, the kept checkpoints with their
metrics, and tool-call scores before and after the fine-tune on a small learnable tool-calling
set (the tool is chosen by a keyword of the question)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from kubetune_trainer.runtime.progress import read_progress
from tests.support.jobs import job_dir, logged_losses, manifest, tiny_job, train
from tests.support.tool_data import COMPACT_TEMPLATE, TOOL_LORA, write_tool_set


def test_lora_on_two_nodes_learns_to_call_the_right_tool(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    train_set = write_tool_set(tmp_path / "tools-train.jsonl", 240, seed=1)
    validation = write_tool_set(tmp_path / "tools-valid.jsonl", 24, seed=2)
    job = tiny_job(
        tiny_model_dir,
        "tool-eval",
        **{
            "spec.dataset.sources": [{"source": str(train_set)}],
            "spec.dataset.validation": {"source": str(validation)},
            "spec.dataset.chatTemplate": {"jinja": COMPACT_TEMPLATE},
            "spec.evaluation": {"baseline": True, "maxNewTokens": 40},
            "spec.distributed": {"nodes": 2},  # each rank generates half the turns
            "spec.method.lora": TOOL_LORA,
            "spec.training.maxSteps": 60,
            "spec.training.learningRate": 5e-3,
            "spec.training.evalSteps": 30,
            "spec.training.saveSteps": 30,
        },
    )
    result = train(job, tmp_path)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    losses = logged_losses(tmp_path, job)
    assert losses[-1] < losses[0] * 0.6, losses  # it learns
    out = manifest(tmp_path, job)
    assert out["metrics"]["globalStep"] == 60
    adapter = Path(out["outputs"]["adapter"])
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert (adapter / "tokenizer.json").exists()
    # the adapter carries the exact template the data was rendered with
    template = (adapter / "chat_template.jinja").read_text()
    assert template == COMPACT_TEMPLATE
    assert out["chatTemplateSha256"] == hashlib.sha256(template.encode()).hexdigest()
    # both nodes joined one process group: rank 1 logged from its own node
    assert "world size 2" in (job_dir(tmp_path, job) / "logs" / "node-1.log").read_text()
    # the preflight measured that group before the first step, and progress.json kept it
    network = (read_progress(job_dir(tmp_path, job)) or {})["network"]
    assert network["busBandwidthGBps"] > 0 and network["ranks"] == 2 and network["nodes"] == 2
    evaluation = out["evaluation"]
    before, after = evaluation["baselineToolCalls"], evaluation["toolCalls"]
    assert after["turns"] == before["turns"] == 24  # both ranks' halves, gathered
    assert before["toolNameAccuracy"] == 0.0  # the base model never calls a tool
    assert after["toolNameAccuracy"] >= 0.8, evaluation
    assert after["calledWhenExpected"] >= 0.8 and after["wellFormed"] >= 0.8, evaluation
    assert after["refrainedWhenNotExpected"] >= 0.8, evaluation
    # eval loss and mean token accuracy at the last step; per-turn results on the volume
    assert evaluation["step"] == 60 and 0.5 < evaluation["meanTokenAccuracy"] <= 1.0
    rows = [json.loads(line) for line in Path(evaluation["samples"]).read_text().splitlines()]
    assert len(rows) == 24 and {"reply", "expected", "calls", "nameMatch"} <= rows[0].keys()
    # what the status gets: the same evaluation, and the kept checkpoints with their metrics
    progress = read_progress(job_dir(tmp_path, job))
    assert progress is not None and progress["evaluation"] == evaluation
    kept = progress["checkpointsKept"]
    assert [c["step"] for c in kept] == [30, 60]
    assert set(kept[0]["metrics"]) == {"train_loss", "valid_loss", "valid_mean_token_accuracy"}
    assert kept[1]["metrics"]["valid_loss"] < kept[0]["metrics"]["valid_loss"]
    # TensorBoard got the accuracy beside the loss (the Trainer logs both)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = next((job_dir(tmp_path, job) / "tensorboard").rglob("events.out.tfevents.*"))
    board = EventAccumulator(str(events))
    board.Reload()
    assert [e.step for e in board.Scalars("eval/mean_token_accuracy")] == [30, 60]


class Recorded:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def report(self, progress: dict[str, Any], force: bool = False) -> None:
        self.reports.append(progress)


@pytest.mark.parametrize(
    ("template", "error"),
    [
        (COMPACT_TEMPLATE, "adapter_config.json"),  # no adapter where the export puts it
        ("{% for m in messages %}{{ m.content }}{% endfor %}", "no tool-call syntax"),
    ],
)
def test_a_failed_evaluation_is_reported_and_keeps_the_outputs(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, template: str, error: str
) -> None:
    from kubetune.render.layout import Layout
    from kubetune.render.trainer_config import trainer_config
    from kubetune_trainer.data.prepared import PreparedManifest
    from kubetune_trainer.data.splits import EVAL_CONVERSATIONS
    from kubetune_trainer.export.evaluate import evaluate_tool_calls
    from tests.support.factories import REPO

    (tmp_path / "held-out").mkdir()
    data = write_tool_set(tmp_path / "held-out" / EVAL_CONVERSATIONS, 4, seed=3)
    job = tiny_job(tiny_model_dir, "fails", **{"spec.dataset.evalFraction": 0.1})
    config = trainer_config(job, Layout(PurePosixPath(tmp_path), relative_base=PurePosixPath(REPO)))
    out = Path(config.paths.output)
    out.mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"job": "fails"}))
    tokenizer.chat_template = template
    sink = Recorded()
    prepared: PreparedManifest = {
        "model": str(tiny_model_dir),
        "modelRevision": None,
        "dataset": str(data.parent),
    }
    evaluate_tool_calls(config, prepared, tokenizer, sink, {"loss": 1.0})
    reported = sink.reports[-1]["evaluation"]
    assert error in reported["error"] and reported["loss"] == 1.0, reported
    assert json.loads((out / "manifest.json").read_text()) == {
        "job": "fails",
        "evaluation": reported,
    }
