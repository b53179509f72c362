"""`training.objective: dpo` end to end on the tiny model, as `kubetune run` runs it: prepare
counts the pairs it skips, TRL's DPOTrainer raises the reward accuracy well above chance (LoRA
with the adapter-disabled reference, full fine-tuning with precomputed reference log-probs),
and the rewards reach progress.json (the status) and TensorBoard."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.report.metrics_log import read_metrics
from kubetune_trainer.stages.prepare import PrepareError, prepare
from tests.support.jobs import config_for, job_dir, manifest, tiny_job, train


def pairs(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """Learnable: the right sum is preferred to a refusal."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        out.append(
            {
                "prompt": [{"role": "user", "content": f"What is {a} plus {b}?"}],
                "chosen": [{"role": "assistant", "content": f"{a} plus {b} is {a + b}."}],
                "rejected": [{"role": "assistant", "content": "I do not know."}],
            }
        )
    return out


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def dpo_overrides(data: Path, **dpo: Any) -> dict[str, Any]:
    return {
        "spec.dataset.sources": [{"source": str(data), "format": "preference"}],
        "spec.training.objective": "dpo",
        "spec.training.dpo": {"beta": 0.1, **dpo},
    }


BAD = [
    {"prompt": "Hi", "chosen": "Hello."},  # no rejected
    {"prompt": "Hi", "chosen": "Hello.", "rejected": "Hello."},  # identical
    {"prompt": "Hi", "chosen": "", "rejected": "Go away."},  # empty completion
]


def as_chat(record: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """The same record in the conversational layout (one file keeps one layout: datasets 4
    refuses a column that is a list in some rows and a string in others)."""
    return {
        key: [{"role": "user" if key == "prompt" else "assistant", "content": text}]
        for key, text in record.items()
    }


def test_prepare_skips_and_counts_bad_pairs(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "pairs.jsonl", pairs(10) + [as_chat(r) for r in BAD])
    config = config_for(tiny_model_dir, tmp_path / "ws", **dpo_overrides(data))
    report = prepare(config)["report"]
    (source,) = report["sources"]
    assert (source["records"], source["samples"], source["skipped"]) == (13, 10, 3)
    assert source["skippedReasons"] == {
        "missing rejected": 1,
        "identical completions": 1,
        "empty completion": 1,
    }
    assert report["train"]["samples"] == 10


def test_prepare_fails_when_no_pair_survives(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "bad.jsonl", BAD)
    config = config_for(tiny_model_dir, tmp_path / "ws", **dpo_overrides(data))
    with pytest.raises(PrepareError, match=r"dataset.sources\[0\].*none of its 3 records"):
        prepare(config)


def tensorboard_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def dpo_job(model_dir: Path, data: Path, name: str, learning_rate: float, **spec: Any) -> Any:
    """16 DPO steps on the learnable pairs, rewards logged every 4."""
    return tiny_job(
        model_dir,
        f"dpo-{name}",
        **{
            **dpo_overrides(data),
            "spec.training.maxSteps": 16,
            "spec.training.learningRate": learning_rate,
            "spec.training.loggingSteps": 4,
            "spec.training.saveSteps": 16,
            **spec,
        },
    )


@pytest.mark.parametrize(
    ("method", "learning_rate", "reference"),
    [("lora", 5e-3, "live"), ("full", 1e-3, "precomputed")],
)
def test_dpo_raises_reward_accuracy(
    method: str, learning_rate: float, reference: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write(tmp_path / "pairs.jsonl", pairs(64))
    job = dpo_job(
        tiny_model_dir,
        data,
        method,
        learning_rate,
        **{
            "spec.training.dpo": {"beta": 0.1, "reference": reference},
            "spec.method": {"type": method, **({"lora": LORA} if method == "lora" else {})},
            "spec.dataset.evalFraction": 0.2,  # held-out pairs, rated at steps 8 and 16
            "spec.training.evalSteps": 8,
        },
    )
    result = train(job, tmp_path)
    assert result.ok, (result.log or Path("/dev/null")).read_text()[-3000:]
    progress = json.loads((job_dir(tmp_path, job) / "progress.json").read_text())
    rewards = progress["rewards"]
    assert progress["step"] == 16
    assert rewards["accuracy"] >= 0.9, rewards  # chance is 0.5 (0 at step 1: no margin yet)
    assert rewards["margin"] > 0 and rewards["chosen"] > rewards["rejected"], rewards
    held_out = progress["evaluation"]  # what the status's evaluation gets
    assert held_out["step"] == 16 and held_out["rewards"]["accuracy"] >= 0.9, held_out
    assert {"train/rewards/accuracies", "train/rewards/margins"} <= tensorboard_tags(
        job_dir(tmp_path, job) / "tensorboard"
    )
    # the history has TRL's rewards, train and held-out, and the report charts them
    history = read_metrics(job_dir(tmp_path, job) / "metrics.jsonl")
    assert [x["step"] for x in history if "rewards/margins" in x] == [1, 4, 8, 12, 16]
    assert [x["step"] for x in history if "eval_rewards/accuracies" in x] == [8, 16]
    report = (job_dir(tmp_path, job) / "output" / "report.html").read_text()
    assert '"title":"DPO rewards"' in report
    outputs = manifest(tmp_path, job)["outputs"]
    assert set(outputs) == ({"adapter"} if method == "lora" else {"merged"})
    if method == "full":  # the reference log-probs are cached beside the prepared data
        prepared = json.loads((job_dir(tmp_path, job) / "prepared.json").read_text())
        assert list((Path(prepared["dataset"]) / "train").glob("cache-*.arrow"))


QLORA = {
    "type": "qlora",
    "lora": LORA,
    "quantization": {"bits": 4, "quantType": "nf4", "doubleQuant": True, "computeDtype": "float32"},
}


@pytest.mark.parametrize(
    ("name", "method", "distributed", "learning_rate", "logged"),
    [
        # the 4-bit base with its adapter disabled is the reference
        ("qlora", QLORA, {"nodes": 1}, 5e-3, "Linear4bit"),
        # two nodes: TRL's reference pass on each rank's share of the pairs, gathered
        (
            "ddp",
            {"type": "lora", "lora": LORA},
            {"nodes": 2},
            5e-3,
            "trained as DistributedDataParallel",
        ),
        # the parameters sharded over two processes; the reference log-probs precomputed
        (
            "zero3",
            {"type": "full"},
            {"processesPerNode": 2, "strategy": "deepspeed-zero3"},
            1e-3,
            "trained as DeepSpeedEngine",
        ),
    ],
)
def test_dpo_under_qlora_ddp_and_zero3(
    name: str,
    method: dict[str, Any],
    distributed: dict[str, Any],
    learning_rate: float,
    logged: str,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    data = write(tmp_path / "pairs.jsonl", pairs(64))
    job = dpo_job(
        tiny_model_dir,
        data,
        name,
        learning_rate,
        **{"spec.method": method, "spec.distributed": distributed},
    )
    result = train(job, tmp_path)
    assert result.ok, (result.log or Path("/dev/null")).read_text()[-3000:]
    log = (job_dir(tmp_path, job) / "logs" / "node-0.log").read_text()
    assert logged in log, log[-2000:]
    rewards = json.loads((job_dir(tmp_path, job) / "progress.json").read_text())["rewards"]
    assert rewards["accuracy"] >= 0.9 and rewards["margin"] > 0, rewards
