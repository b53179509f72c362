"""Shared bench inputs: a seeded long-tailed chat dataset, the tiny model, the local cluster and
its S3 server."""

from __future__ import annotations

import json
import os
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
    from kubetune_trainer.storage.tiny import build_tiny_llama

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


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def multi_turn_records(n: int, turns: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """Chats of a system prompt and `turns` user/assistant exchanges of 10-200 words."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        messages = [{"role": "system", "content": _words(rng, 5, 30)}]
        for _ in range(turns):
            messages.append({"role": "user", "content": _words(rng, 10, 60)})
            messages.append({"role": "assistant", "content": _words(rng, 30, 200)})
        records.append({"messages": messages})
    return records


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city's name"}},
            "required": ["city"],
        },
    },
}


def tool_records(n: int, rounds: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Chats with a tool definition: per round, a question, a call, its result and a reply."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        messages: list[dict[str, Any]] = []
        for _ in range(rounds):
            call = {"name": "get_weather", "arguments": {"city": _words(rng, 1, 2)}}
            messages += [
                {"role": "user", "content": _words(rng, 10, 40)},
                {"role": "assistant", "content": "", "tool_calls": [{"function": call}]},
                {"role": "tool", "name": "get_weather", "content": _words(rng, 10, 40)},
                {"role": "assistant", "content": _words(rng, 20, 80)},
            ]
        records.append({"messages": messages, "tools": [WEATHER_TOOL]})
    return records


def _cluster_exports() -> dict[str, str]:
    """`hack/local-cluster up` (started, or reused when running): its `export NAME=value` lines."""
    out = subprocess.run(
        [str(Path(__file__).resolve().parents[1] / "hack/local-cluster"), "up"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )


def local_cluster() -> tuple[str, str]:
    """The local control plane (hack/local-cluster up: started, or reused when running): its
    kubeconfig and its kubectl."""
    env = _cluster_exports()
    return env["KUBECONFIG"], env["PATH"].split(":")[0] + "/kubectl"


def local_s3() -> tuple[str, Path]:
    """The local control plane's S3 server (SeaweedFS): its endpoint and the file of its keys.
    KUBETUNE_LOCAL_S3_ENDPOINT and KUBETUNE_LOCAL_S3_CREDENTIALS (the exports of `up`) name a
    running one; without them the local cluster is brought up (or reused)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KUBETUNE_LOCAL_S3_")}
    if len(env) < 2:
        env = _cluster_exports()
    return env["KUBETUNE_LOCAL_S3_ENDPOINT"], Path(env["KUBETUNE_LOCAL_S3_CREDENTIALS"])
