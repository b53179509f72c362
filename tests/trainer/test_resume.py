"""Nothing completed is lost: a SIGKILLed run resumes from its latest complete checkpoint and
ends at the planned step; a half-written checkpoint is never chosen; SIGTERM leaves a complete
checkpoint; two concurrent preparations do the work once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

from kubetune.api import FineTuneJob
from kubetune.render.layout import Layout
from kubetune.render.trainer_config import trainer_config
from kubetune_trainer.report.metrics_log import read_metrics
from kubetune_trainer.runtime.checkpoints import (
    MARKER,
    checkpoints,
    complete,
    latest_complete,
    step_of,
)
from kubetune_trainer.training.callbacks import PauseAtStep
from tests.support.factories import REPO
from tests.support.jobs import Launched, tiny_job


def slow_job(model_dir: Path, name: str, steps: int, pause_at: int | None = None) -> FineTuneJob:
    # Small steps, frequent saves: there is always a checkpoint to resume from and work left.
    env = [{"name": PauseAtStep.VARIABLE, "value": str(pause_at)}] if pause_at else []
    return tiny_job(
        model_dir,
        name,
        **{
            "spec.training.maxSteps": steps,
            "spec.training.saveSteps": 20,
            "spec.training.microBatchSize": 2,
            "spec.training.loggingSteps": 10,
            "spec.training.saveTotalLimit": 2,
            "spec.env": env,
        },
    )


def test_sigkill_then_restart_resumes_from_the_latest_complete_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Killed at step 50 (held there by the pause hook: checkpoint-40 complete, 10 steps of work
    past it), restarted: resumes from checkpoint-40, skips a torn checkpoint-50, ends at 60."""
    node = Launched(slow_job(tiny_model_dir, "killed", steps=60, pause_at=50), tmp_path)
    node.start()
    node.wait_for("paused at step 50")
    node.kill_all()  # no chance to clean up
    node.wait()
    killed_tokens = int((node.dir / "tokens-trained").read_text())  # 50 steps' worth
    root = node.dir / "checkpoints"
    resumable = latest_complete(root)
    assert resumable is not None
    step = step_of(resumable)
    assert step == 40
    # a checkpoint torn mid-write: newer, but never marked complete
    torn = root / f"checkpoint-{step + 10}"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"\0" * 100)

    node.start()
    assert node.wait() == 0, node.log()[-3000:]
    log = node.log()
    assert f"removed incomplete checkpoint {torn.name}" in log
    assert f"resuming from {resumable.name}" in log
    assert "paused at step" not in log  # the hook holds a run once
    manifest = json.loads((node.dir / "output" / "manifest.json").read_text())
    assert manifest["metrics"]["globalStep"] == 60
    # what the kill cost: the steps past the checkpoint it resumed from, done again
    (resume,) = manifest["resumes"]
    assert (resume["fromStep"], resume["reachedStep"], resume["stepsRedone"]) == (40, 50, 10)
    assert "resuming from step 40 after reaching step 50: 10 steps redone" in log
    # the history: each logging step once (the steps 41-50 logged again after the resume
    # replace the killed run's), and the status' copy, seeded from the file at the resume,
    # counts all
    logged = [1, *range(10, 61, 10)]
    assert [x["step"] for x in read_metrics(node.dir / "metrics.jsonl") if "loss" in x] == logged
    progress = json.loads((node.dir / "progress.json").read_text())
    assert (progress["resumes"], progress["stepsRedone"]) == (1, 10)
    # tokens trained go on from the killed run's: its 50 steps, then steps 41-60 (packed rows:
    # about as many tokens a step)
    trained = progress["tokensTrained"]
    assert trained == int((node.dir / "tokens-trained").read_text())
    assert 0.6 < (trained - killed_tokens) / (killed_tokens * 20 / 50) < 1.4, (
        trained,
        killed_tokens,
    )
    assert progress["metrics"]["logged"] == len(logged)
    assert progress["metrics"]["points"][-1]["step"] == 60
    kept = checkpoints(root)
    assert all(complete(p) for p in kept) and len(kept) == 2  # saveTotalLimit, complete only


def test_sigterm_saves_a_complete_checkpoint_before_exiting(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    node = Launched(slow_job(tiny_model_dir, "terminated", steps=100_000), tmp_path)
    node.start()
    node.wait_for("checkpoint checkpoint-20 complete")
    node.terminate()
    node.wait(timeout=120)
    assert "SIGTERM: saving a checkpoint at step" in node.log()
    stopped_at = int(node.log().split("SIGTERM: saving a checkpoint at step ")[1].split()[0])
    latest = latest_complete(node.dir / "checkpoints")
    assert latest is not None and step_of(latest) == stopped_at
    assert (latest / MARKER).exists()


def test_concurrent_prepares_share_one_preparation(tiny_model_dir: Path, tmp_path: Path) -> None:
    job = tiny_job(tiny_model_dir, "shared")
    config = trainer_config(job, Layout(PurePosixPath(tmp_path), relative_base=PurePosixPath(REPO)))
    config_file = tmp_path / "trainer.yaml"
    config_file.write_text(config.dump())
    command = [sys.executable, "-m", "kubetune_trainer", "prepare", "--config", str(config_file)]
    replicas = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in replicas]
    assert all(p.returncode == 0 for p in replicas), outputs
    assert sum("preparing dataset" in out for out in outputs) == 1, outputs
    fingerprint = json.loads((Path(config.paths.job) / "prepared.json").read_text())["fingerprint"]
    prepared = [p for p in (tmp_path / "cache" / "prepared").iterdir() if p.is_dir()]
    assert [p.name for p in prepared] == [fingerprint]
    assert (prepared[0] / "COMPLETE").exists()
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "already prepared: nothing to do" in again.stdout
