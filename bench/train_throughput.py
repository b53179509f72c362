"""Real tokens per second: kubetune's trainer against a plain TRL SFTTrainer script with
padding, on the same tiny model and data, the seed-5 recipe scaled down to CPU (QLoRA NF4 with
double quant, LoRA r16/α32 on all linear layers, micro 4 × accumulation 2, one epoch).
Target: ≥ 1.5×. Both run in this invocation, one after the other, on the same machine.

    python bench/train_throughput.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, tiny_model

MAX_LENGTH, RECORDS = 1024, 800


def main() -> None:
    model = tiny_model()
    work = Path(tempfile.mkdtemp(prefix="kubetune-bench-"))
    data = work / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in chat_records(RECORDS, seed=2)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}

    job = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bench"},
        "spec": {
            "model": {"source": str(model)},
            "dataset": {"sources": [{"source": str(data)}], "chatTemplate": {"builtin": "chatml"}},
            "method": {
                "type": "qlora",
                "lora": {"r": 16, "alpha": 32, "dropout": 0.05},
                "quantization": {
                    "bits": 4,
                    "quantType": "nf4",
                    "doubleQuant": True,
                    "computeDtype": "float32",
                },
            },
            "training": {
                "epochs": 1,
                "learningRate": 2e-4,
                "microBatchSize": 4,
                "gradientAccumulationSteps": 2,
                "maxLength": MAX_LENGTH,
                "packing": True,
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
    manifest = json.loads((work / "run/jobs/bench/output/manifest.json").read_text())
    report = json.loads(
        Path(
            json.loads((work / "run/jobs/bench/prepared.json").read_text())["dataset"],
            "report.json",
        ).read_text()
    )
    ours_tokens = report["train"]["tokens"]
    ours = ours_tokens / manifest["metrics"]["train_runtime"]

    line = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("trl_baseline.py")),
            str(model),
            str(data),
            str(MAX_LENGTH),
            str(work / "trl"),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    baseline = json.loads(line)
    print(f"{RECORDS} long-tailed chats, max length {MAX_LENGTH}, QLoRA NF4, tiny Llama, CPU")
    print(
        f"kubetune (packed):        {ours_tokens:9,d} real tokens in "
        f"{manifest['metrics']['train_runtime']:7.1f}s = {ours:9,.0f} tokens/s"
    )
    print(
        f"TRL SFTTrainer (padded):  {baseline['realTokens']:9,d} real tokens in "
        f"{baseline['seconds']:7.1f}s = {baseline['tokensPerSecond']:9,.0f} tokens/s"
    )
    print(f"ratio kubetune/TRL: {ours / baseline['tokensPerSecond']:.2f}x   target >= 1.5x")


if __name__ == "__main__":
    main()
