"""Completions per second of reinforcement fine-tuning: kubetune's GRPO job (`kubetune run`)
against a plain TRL GRPOTrainer script (grpo_baseline.py), in the same invocation, one after
the other, on the same tiny model, prompts, rewards and settings: LoRA r16/α32/dropout 0.05 on
all linear layers, fp32 on the CPU, micro 8 × accumulation 2 (16 completions, 2 prompts a
step), 8 generations of at most 32 tokens at temperature 1, beta 0.04 (reference log-probs with
the adapter disabled), TRL's default `dapo` loss, seed 42, chatml; rewards: "nine" in the
completion (kubetune: `stringCheck` contains) and a length penalty (`length`, target 16 tokens,
weight 0.2). Both run TRL's own GRPOTrainer with transformers generation: the ratio measures
what kubetune adds or saves around it — its prompts are rendered and tokenized by `prepare`
before training (not timed), TRL's script applies the chat template per batch (timed).

Samples/s is completions per second of `train_runtime` (the Trainer's own clock); tokens/s is
TRL's `num_input_tokens_seen` (prompt + completion tokens) over the same time. Sampling makes
completion lengths differ between the sides, so the mean completion length is printed with
them. On a busy machine the wall clock moves several times between runs, so each side's CPU
seconds inside `Trainer.train` (all threads; cpu_clock/sitecustomize.py) are measured too and
give a second ratio, samples per CPU second. Peak RSS is each side's largest process (wait4's
ru_maxrss of a lean launcher's children: kubetune's CLI, `prepare` and the trainer; the
baseline's one process). OpenMP threads: `kubetune run` gives its process the machine's cores;
the baseline gets the same.
Target: ≥ 1.0× samples/s.

With `--repeat N` each side runs N times, alternating (ABBA…), and each side's fastest run
counts (this machine's load moves timings by several times; every run's time is printed).

    python bench/grpo_throughput.py [--steps 12] [--repeat 2] [--json FILE]   (the defaults)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import WORDS, tiny_model

CPU_CLOCK = Path(__file__).parent / "cpu_clock"

SETTINGS: dict[str, Any] = {
    "micro": 8,
    "accumulation": 2,
    "numGenerations": 8,
    "maxCompletionLength": 32,
    "temperature": 1.0,
    "beta": 0.04,
    "lossType": "dapo",
    "learningRate": 1e-4,
    "seed": 42,
    "gradientCheckpointing": False,
    "targetTokens": 16,
    "weights": [1.0, 0.2],
}

# runs a command and prints the peak RSS (KiB) of its largest process: the launcher itself
# imports nothing heavy, so its pages at the fork do not dominate
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'w'))\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)\n"
)


def prompt_records(n: int, seed: int) -> list[dict[str, str]]:
    """Questions of 16 words from the tiny model's pretraining vocabulary (one length: the
    sides may draw different prompts, which should not make one side's work larger)."""
    rng = random.Random(seed)
    return [{"prompt": " ".join(rng.choice(WORDS) for _ in range(16))} for _ in range(n)]


def launched(command: list[str], stdout: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run `command` under the lean launcher: its largest process's peak RSS in MiB, and the
    CPU seconds its `Trainer.train` took (cpu_clock/sitecustomize.py)."""
    clock = stdout.with_suffix(".cpu")
    path = os.pathsep.join(filter(None, [str(CPU_CLOCK), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(stdout), *command],
        env={**env, "PYTHONPATH": path, "KUBETUNE_BENCH_CPU_FILE": str(clock)},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{command[:2]} failed:\n{stdout.read_text()[-3000:]}{done.stderr[-3000:]}")
    (cpu,) = map(float, clock.read_text().split())  # one train() per side
    return int(done.stdout.split()[-1]) / 1024, cpu


def job(model: Path, data: Path, steps: int) -> dict[str, Any]:
    s = SETTINGS
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bench-grpo"},
        "spec": {
            "model": {"source": str(model)},
            "dataset": {
                "sources": [{"source": str(data), "format": "prompts"}],
                "chatTemplate": {"builtin": "chatml"},
            },
            "method": {"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.05}},
            "training": {
                "objective": "grpo",
                "grpo": {
                    "numGenerations": s["numGenerations"],
                    "maxCompletionLength": s["maxCompletionLength"],
                    "temperature": s["temperature"],
                    "beta": s["beta"],
                    "lossType": s["lossType"],
                },
                "maxSteps": steps,
                "learningRate": s["learningRate"],
                "microBatchSize": s["micro"],
                "gradientAccumulationSteps": s["accumulation"],
                "maxLength": 256,
                "precision": "fp32",
                "optimizer": "adamw_torch",
                "seed": s["seed"],
                "saveSteps": 100000,
                "loggingSteps": 1,
                "gradientCheckpointing": s["gradientCheckpointing"],
            },
            "rewards": [
                {"stringCheck": {"operation": "contains", "expected": "nine"}},
                {"length": {"targetTokens": s["targetTokens"]}, "weight": s["weights"][1]},
            ],
        },
    }


def run_kubetune(spec: dict[str, Any], work: Path, env: dict[str, str]) -> dict[str, Any]:
    job_file = work / "bench.yaml"
    job_file.write_text(yaml.safe_dump(spec))
    kubetune = str(Path(sys.executable).with_name("kubetune"))
    rss, cpu = launched(
        [kubetune, "run", str(job_file), "--output", str(work / "run")], work / "run.log", env
    )
    folder = work / "run/jobs" / spec["metadata"]["name"]
    manifest = json.loads((folder / "output/manifest.json").read_text())
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    logged = [x for x in lines if "completions/mean_length" in x]
    t = spec["spec"]["training"]
    return {
        "completions": logged[-1]["step"] * t["microBatchSize"] * t["gradientAccumulationSteps"],
        "seconds": float(manifest["metrics"]["train_runtime"]),
        "tokens": int(logged[-1]["num_tokens"]),
        "meanCompletionLength": sum(x["completions/mean_length"] for x in logged) / len(logged),
        "reward": [x["reward"] for x in logged],
        "peakRssMiB": rss,
        "cpuSeconds": cpu,
    }


def run_baseline(model: Path, data: Path, steps: int, work: Path, env: dict[str, str]) -> Any:
    out = work / "trl.log"
    script = str(Path(__file__).with_name("grpo_baseline.py"))
    settings = json.dumps({**SETTINGS, "steps": steps})
    rss, cpu = launched(
        [sys.executable, script, str(model), str(data), settings, str(work / "trl")], out, env
    )
    result = json.loads(out.read_text().splitlines()[-1])
    return {**result, "ownPeakRssMiB": result["peakRssMiB"], "peakRssMiB": rss, "cpuSeconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps on each side")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each side, alternating; the best counts"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    # the tiny model, built once per machine; reused without importing torch into this process
    built = Path(tempfile.gettempdir()) / "kubetune-bench" / "tiny-llama"
    model = built if built.exists() else tiny_model()
    work = Path(tempfile.mkdtemp(prefix="kubetune-bench-grpo-"))
    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in prompt_records(64, seed=5)))
    # `kubetune run` gives its one process all the cores (local_run.local_env); so does this
    threads = str(max(1, os.cpu_count() or 1))
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": threads,
    }
    runs: dict[str, list[dict[str, Any]]] = {"kubetune": [], "trl": []}
    for i in range(args.repeat):  # ABBA...: the machine's drift falls on both sides alike
        for side in ("kubetune", "trl") if i % 2 == 0 else ("trl", "kubetune"):
            folder = work / f"{side}-{i}"
            folder.mkdir()
            runs[side].append(
                run_kubetune(job(model, data, args.steps), folder, env)
                if side == "kubetune"
                else run_baseline(model, data, args.steps, folder, env)
            )
    for side, results in runs.items():
        print(
            f"{side} runs, wall / CPU seconds:",
            ", ".join(f"{r['seconds']:.1f} / {r['cpuSeconds']:.1f}" for r in results),
        )
    ours, theirs = (min(runs[side], key=lambda r: float(r["seconds"])) for side in runs)
    cpu_ours, cpu_theirs = (min(float(r["cpuSeconds"]) for r in runs[side]) for side in runs)
    s = SETTINGS
    print(
        f"{args.steps} steps × {s['micro'] * s['accumulation']} completions "
        f"({s['numGenerations']} per prompt, ≤ {s['maxCompletionLength']} tokens), LoRA GRPO, "
        f"CPU, {threads} OpenMP threads"
    )
    for name, r in (("kubetune (GRPO)", ours), ("TRL GRPOTrainer script", theirs)):
        r["samplesPerSecond"] = r["completions"] / r["seconds"]
        r["tokensPerSecond"] = r["tokens"] / r["seconds"]
        print(
            f"{name:24s} {r['completions']:4d} completions in {r['seconds']:6.1f}s = "
            f"{r['samplesPerSecond']:6.2f} samples/s, {r['tokensPerSecond']:7.0f} tokens/s, "
            f"mean completion {r['meanCompletionLength']:4.1f} tokens, "
            f"peak RSS {r['peakRssMiB']:5.0f} MiB"
        )
    ratio = ours["samplesPerSecond"] / theirs["samplesPerSecond"]
    cpu_ratio = cpu_theirs / cpu_ours
    print(f"ratio kubetune/TRL: {ratio:.2f}x samples/s   target >= 1.0x")
    print(
        f"samples per CPU second of train(): kubetune {ours['completions'] / cpu_ours:.2f}, "
        f"TRL {theirs['completions'] / cpu_theirs:.2f}, ratio {cpu_ratio:.2f}x"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "kubetune": ours,
                    "trl": theirs,
                    "ratio": ratio,
                    "cpuRatio": cpu_ratio,
                    "runs": runs,
                }
            )
        )


if __name__ == "__main__":
    main()
