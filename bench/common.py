"""Shared bench inputs: a seeded long-tailed chat dataset and the tiny model."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

WORDS = (
    "the sky is blue and grass is green while snow is white so what colour is coal "
    "one two three four five six seven eight nine ten plus minus answer"
).split()


def long_tailed_lengths(n: int, seed: int = 0, cap: int = 2000) -> list[int]:
    """Token-ish lengths with a heavy tail (log-normal): most short, a few long."""
    rng = random.Random(seed)
    return [max(8, min(cap, int(rng.lognormvariate(4.6, 0.9)))) for _ in range(n)]


def chat_records(n: int, seed: int = 0, cap_words: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for length in long_tailed_lengths(n, seed, cap_words):
        question = " ".join(rng.choice(WORDS) for _ in range(max(3, length // 4)))
        answer = " ".join(rng.choice(WORDS) for _ in range(max(3, length - length // 4)))
        records.append(
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return records


def tiny_model() -> Path:
    from kubetune_trainer.tiny import build_tiny_llama

    root = Path(tempfile.gettempdir()) / "kubetune-bench"
    root.mkdir(exist_ok=True)
    path = root / "tiny-llama"
    return path if path.exists() else build_tiny_llama(path)


def run_kubetune(
    job: dict[str, Any], work: Path, env: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """`kubetune run` on the job; returns its train seconds (the run manifest) and the prepared
    training split's report (samples, tokens)."""
    job_file = work / "bench.yaml"
    job_file.write_text(yaml.safe_dump(job))
    kubetune = Path(sys.executable).with_name("kubetune")
    subprocess.run(
        [str(kubetune), "run", str(job_file), "--output", str(work / "run")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    jobs = work / "run/jobs" / job["metadata"]["name"]
    manifest = json.loads((jobs / "output/manifest.json").read_text())
    prepared = json.loads((jobs / "prepared.json").read_text())
    report = json.loads(Path(prepared["dataset"], "report.json").read_text())
    return float(manifest["metrics"]["train_runtime"]), dict(report["train"])


def run_baseline(script: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """A baseline script next to this file; its last stdout line is its JSON result."""
    line = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    return dict(json.loads(line))
