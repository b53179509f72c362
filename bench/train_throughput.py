"""Real tokens per second: kubetune's trainer against a plain TRL SFTTrainer script, on the
same tiny model and data, the seed-5 recipe scaled down to CPU (QLoRA NF4 with double quant,
LoRA r16/α32 on all linear layers, micro 4 × accumulation 2, one epoch). TRL runs twice, with
its own packing and with padded batches; the ratio is against the faster of the two.
Target: ≥ 1.5×. All run in this invocation, one after the other, on the same machine.

    python bench/train_throughput.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, run_baseline, run_kubetune, tiny_model

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
    seconds, train = run_kubetune(job, work, env)
    ours_tokens = train["tokens"]
    ours = ours_tokens / seconds
    baselines = {
        mode: run_baseline(
            "trl_baseline.py",
            [str(model), str(data), str(MAX_LENGTH), str(work / f"trl-{mode}"), mode],
            env,
        )
        for mode in ("packed", "padded")
    }
    print(f"{RECORDS} long-tailed chats, max length {MAX_LENGTH}, QLoRA NF4, tiny Llama, CPU")
    print(
        f"kubetune (packed):        {ours_tokens:9,d} real tokens in "
        f"{seconds:7.1f}s = {ours:9,.0f} tokens/s"
    )
    for mode, baseline in baselines.items():
        print(
            f"TRL SFTTrainer ({mode}):  {baseline['realTokens']:9,d} real tokens in "
            f"{baseline['seconds']:7.1f}s = {baseline['tokensPerSecond']:9,.0f} tokens/s"
        )
    best = max(b["tokensPerSecond"] for b in baselines.values())
    print(f"ratio kubetune/TRL (its faster run): {ours / best:.2f}x   target >= 1.5x")


if __name__ == "__main__":
    main()
