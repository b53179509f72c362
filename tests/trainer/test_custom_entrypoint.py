"""A user's own training module runs under the same torchrun, volumes and topology, gets the
resolved paths, and a chained stage starts from the previous stage's latest checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.jobs import job_dir, tiny_job, train

MODULE = "tests.trainer.custom_train_module"


def test_custom_module_in_chained_stages(tiny_model_dir: Path, tmp_path: Path) -> None:
    stage_a = tiny_job(
        tiny_model_dir,
        "stage-a",
        **{
            "spec.entrypoint": {"module": MODULE, "args": ["--stage", "a"]},
            "spec.distributed": {"nodes": 2, "strategy": "deepspeed-zero2"},
            "spec.method": {"type": "full"},
        },
    )
    result = train(stage_a, tmp_path)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    seen = json.loads((job_dir(tmp_path, stage_a) / "output" / "seen.json").read_text())
    assert seen["argv"] == ["--stage", "a"] and seen["world"] == 2
    env = seen["env"]
    assert env["KUBETUNE_MODEL_PATH"] == str(tiny_model_dir)
    assert Path(env["KUBETUNE_DATASET_PATH"], "train").is_dir()  # prepared rows, if wanted
    assert (
        json.loads(Path(env["KUBETUNE_DEEPSPEED_CONFIG"]).read_text())["zero_optimization"]["stage"]
        == 2
    )

    stage_b = tiny_job(
        tiny_model_dir,
        "stage-b",
        **{
            "spec.entrypoint": {"module": MODULE, "args": ["--stage", "b"]},
            "spec.model": {"fromJob": {"name": "stage-a", "artifact": "latestCheckpoint"}},
            "spec.dataset": None,
            "spec.method": {"type": "full"},
        },
    )
    result = train(stage_b, tmp_path)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    env = json.loads((job_dir(tmp_path, stage_b) / "output" / "seen.json").read_text())["env"]
    assert env["KUBETUNE_MODEL_PATH"] == str(
        job_dir(tmp_path, stage_a) / "checkpoints" / "checkpoint-7"
    )
    assert "KUBETUNE_DATASET_PATH" not in env
