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
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, run_baseline, run_kubetune, tiny_model

MAX_LENGTH, RECORDS = 512, 240


def preference_records(n: int, seed: int) -> list[dict[str, object]]:
    """Long-tailed chats as pairs: the record's answer is chosen, another record's rejected."""
    chats = chat_records(n, seed=seed, cap_words=200)
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
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
    seconds, train = run_kubetune(job, work, env)
    ours_tokens = train["tokens"]
    ours = ours_tokens / seconds
    args = [str(model), str(data), str(MAX_LENGTH), str(work / "trl")]
    baseline = run_baseline("dpo_baseline.py", args, {**env, **threads})
    print(f"{train['samples']} long-tailed pairs, max length {MAX_LENGTH}, LoRA DPO, CPU")
    print(
        f"kubetune (DPO):           {ours_tokens:9,d} real tokens in "
        f"{seconds:7.1f}s = {ours:9,.0f} tokens/s"
    )
    print(
        f"TRL DPOTrainer script:    {baseline['realTokens']:9,d} real tokens in "
        f"{baseline['seconds']:7.1f}s = {baseline['tokensPerSecond']:9,.0f} tokens/s"
    )
    print(f"ratio kubetune/TRL: {ours / baseline['tokensPerSecond']:.2f}x   target >= 0.95x")


if __name__ == "__main__":
    main()
