"""Evaluation in a real job on CPU: eval loss and mean token accuracy at evalSteps, the kept
checkpoints with their metrics, and tool-call scores before and after a LoRA fine-tune on a
small learnable tool-calling set (the tool is chosen by a keyword of the question)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.progress import read_progress
from tests.trainer.jobs import job_dir, manifest, tiny_job, train

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Quito"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("get_weather", "get_time")
]


# Hermes-style calls without the tool definitions' long preamble: short rows, fast steps. The
# scorer reads it as any template with `<tool_call>` blocks.
COMPACT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}"
    '<tool_call>{"name": "{{ c.function.name }}", "arguments": '
    "{{ c.function.arguments | tojson }}}</tool_call>"
    "{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tool_conversation(rng: random.Random) -> dict[str, Any]:
    """A question whose keyword picks the tool (or none, for a greeting)."""
    city = rng.choice(CITIES)
    kind = rng.choice(["weather", "time", "hello"])
    if kind == "hello":
        user, reply = f"hello from {city}", {"role": "assistant", "content": "hello"}
    else:
        user = f"what is the {kind} in {city}?"
        call = {"name": f"get_{kind}", "arguments": {"city": city}}
        reply = {"role": "assistant", "tool_calls": [{"type": "function", "function": call}]}
    return {"messages": [{"role": "user", "content": user}, reply], "tools": TOOLS}


def write_tool_set(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps(tool_conversation(rng)) + "\n" for _ in range(n)))
    return path


def test_lora_learns_to_call_the_right_tool(tiny_model_dir: Path, tmp_path: Path) -> None:
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
            "spec.method.lora": {"r": 32, "alpha": 64, "dropout": 0.0},
            "spec.training.maxSteps": 120,
            "spec.training.learningRate": 1e-2,
            "spec.training.scheduler": "constant",
            "spec.training.evalSteps": 60,
            "spec.training.saveSteps": 60,
        },
    )
    result = train(job, tmp_path)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    evaluation = manifest(tmp_path, job)["evaluation"]
    before, after = evaluation["baselineToolCalls"], evaluation["toolCalls"]
    assert after["turns"] == before["turns"] == 24
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
