"""Real tokens per second of preference tuning: kubetune's DPO job against a plain TRL
DPOTrainer script (dpo_baseline.py), on the same tiny model and pairs: LoRA r16/α32 on all
linear layers, beta 0.1, sigmoid loss, micro 4 × accumulation 2, one epoch, chatml template.
Both compute the reference log-probs every step with the adapter disabled (`reference: live`,
TRL's default): kubetune's default, `precomputed`, runs that pass when the trainer is built,
outside the timed `train_runtime`, which would flatter kubetune. kubetune runs TRL's own
DPOTrainer, so the ratio measures what kubetune adds or saves around it (prepare's tokenization
happens before training and is not timed on either side).
Target: ≥ 0.95× (no slower than TRL alone). Both run in this invocation, one after the other.

    python bench/dpo_throughput.py
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, tiny_model

MAX_LENGTH, RECORDS = 512, 240


def preference_records(n: int, seed: int) -> list[dict[str, object]]:
    """Long-tailed chats as pairs: the record's answer is chosen, another record's rejected."""
    chats = chat_records(n, seed=seed, cap_words=200)
    rng = random.Random(seed)
    out = []
    for chat in chats:
        prompt, answer = chat["messages"]
        other = rng.choice(chats)["messages"][1]
        if other["content"] == answer["content"]:
            continue
        out.append({"prompt": [prompt], "chosen": [answer], "rejected": [other]})
    return out


def main() -> None:
    model = tiny_model()
    work = Path(tempfile.mkdtemp(prefix="kubetune-bench-dpo-"))
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in preference_records(RECORDS, seed=5)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    # the thread count `kubetune run` gives its one process (local_run.local_env); the baseline
    # gets the same: on a busy machine 2 threads against 1 alone was a 10x difference
    threads = {"OMP_NUM_THREADS": str(max(1, os.cpu_count() or 1))}
    job = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bench-dpo"},
        "spec": {
            "model": {"source": str(model)},
            "dataset": {
                "sources": [{"source": str(data), "format": "preference"}],
                "chatTemplate": {"builtin": "chatml"},
            },
            "method": {"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.05}},
            "training": {
                "objective": "dpo",
                "dpo": {"beta": 0.1, "lossType": "sigmoid", "reference": "live"},
                "epochs": 1,
                "learningRate": 5e-5,
                "microBatchSize": 4,
                "gradientAccumulationSteps": 2,
                "maxLength": MAX_LENGTH,
                "precision": "fp32",
                "optimizer": "adamw_torch",
                "saveSteps": 100000,
                "loggingSteps": 10,
                "gradientCheckpointing": True,
            },
        },
    }
    job_file = work / "bench.yaml"
    job_file.write_text(yaml.safe_dump(job))
    kubetune = Path(sys.executable).with_name("kubetune")
    subprocess.run(
        [str(kubetune), "run", str(job_file), "--output", str(work / "run")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    jobs = work / "run/jobs/bench-dpo"
    manifest = json.loads((jobs / "output/manifest.json").read_text())
    prepared = json.loads((jobs / "prepared.json").read_text())
    report = json.loads(Path(prepared["dataset"], "report.json").read_text())
    ours_tokens = report["train"]["tokens"]
    ours = ours_tokens / manifest["metrics"]["train_runtime"]

    line = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("dpo_baseline.py")),
            str(model),
            str(data),
            str(MAX_LENGTH),
            str(work / "trl"),
        ],
        env={**env, **threads},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    baseline = json.loads(line)
    print(f"{report['train']['samples']} long-tailed pairs, max length {MAX_LENGTH}, LoRA DPO, CPU")
    print(
        f"kubetune (DPO):           {ours_tokens:9,d} real tokens in "
        f"{manifest['metrics']['train_runtime']:7.1f}s = {ours:9,.0f} tokens/s"
    )
    print(
        f"TRL DPOTrainer script:    {baseline['realTokens']:9,d} real tokens in "
        f"{baseline['seconds']:7.1f}s = {baseline['tokensPerSecond']:9,.0f} tokens/s"
    )
    print(f"ratio kubetune/TRL: {ours / baseline['tokensPerSecond']:.2f}x   target >= 0.95x")


if __name__ == "__main__":
    main()
