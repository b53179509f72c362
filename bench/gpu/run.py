"""GPU evidence: kubetune's trainer path on Llama-3-8B's architecture, against TRL's
SFTTrainer in the same run (docs/benchmarks.md, "GPU").

    python bench/gpu/run.py                   # `gpu` on a CUDA machine, else `cpu`
    python bench/gpu/run.py --preset cpu      # a tiny model of the same architecture (CI)

Per run: real tokens/s, MFU against the bf16 matrix rate measured at the start (6N FLOPs per
token for full fine-tuning, 4N for LoRA/QLoRA, N the base model's parameters; attention FLOPs
in their own column), peak GPU memory, and the ratio to TRL's faster run (packed or padded)
of the same method and length. The weights are random (throughput does not depend on them)
and the data is token ids with chat-like long-tailed lengths (no tokenizer or download). Our side is
kubetune's own path: the prepared-dataset format written by `data.splits.write_split` (best-fit
packing), `train.build_trainer` (model loading, LoRA/QLoRA, the collator, the callbacks) and the
Trainer it returns. Before training, every attention implementation is checked to keep packed
samples apart on this device: a packed row's logits must equal each sample's logits alone.

The table is printed and written, after every run, to `<out>/gpu-bench.json` (`--out`, else
$OUT, else a temporary folder), so a run cut short keeps what it measured. `--budget-s` stops
starting runs once that many seconds have passed; runs are ordered by importance.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from sides import largest_micro_batch
from workload import (
    PRESETS,
    Run,
    build_model,
    keeps_samples_apart,
    matmul_tflops,
    parameter_count,
    synthetic_samples,
)


def one_process_group() -> None:
    """The environment torchrun gives the trainer's one process on one GPU (world size 1): the
    Trainer then starts the process group itself, as in a pod (both sides alike)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}
    defaults.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def versions() -> dict[str, str]:
    names = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def finish(result: dict[str, Any], n: int, rate: float, run: Run) -> None:
    """MFU (model FLOPs, then with attention) from the measured rate and tokens/s."""
    per_token = (6.0 if run.method == "full" else 4.0) * n
    tokens = result["tokensPerSecond"]
    result["mfu"] = tokens * per_token / (rate * 1e12)
    result["mfuWithAttention"] = (
        tokens * (per_token + result["attentionFlopsPerToken"]) / (rate * 1e12)
    )


def ratios(report: dict[str, Any]) -> None:
    """Each kubetune run's tokens/s over TRL's best run of the same method and length."""
    trl: dict[tuple[str, int], float] = {}
    for r in report["runs"]:
        if r["side"] == "trl" and r.get("tokensPerSecond"):
            key = (r["method"], r["length"])
            trl[key] = max(trl.get(key, 0.0), r["tokensPerSecond"])
    for r in report["runs"]:
        key = (r["method"], r["length"])
        if r["side"] == "kubetune" and r.get("tokensPerSecond") and key in trl:
            r["ratioToTrl"] = r["tokensPerSecond"] / trl[key]


def table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    machine = report["machine"]
    out = Table(
        title=f"{machine['device']}: matrix rate {machine['matmulTflops']:.1f} TFLOP/s "
        f"({report['preset']} preset, N = {report['parameters']:,})"
    )
    for column in ("run", "micro", "tokens/s", "MFU", "MFU+attn", "peak GiB", "× TRL", "note"):
        out.add_column(column, justify="left" if column in ("run", "note") else "right")
    for r in report["runs"]:

        def fmt(key: str, spec: str, r: dict[str, Any] = r) -> str:
            value = r.get(key)
            return "" if value is None else format(value, spec)

        out.add_row(
            r["name"],
            str(r["micro"]),
            fmt("tokensPerSecond", ",.0f"),
            fmt("mfu", ".1%"),
            fmt("mfuWithAttention", ".1%"),
            fmt("peakGiB", ".1f"),
            fmt("ratioToTrl", ".2f"),
            r.get("error", ""),
        )
    Console(width=140).print(out)
    for impl, check in report["samplesApart"].items():
        if "error" in check:
            print(f"samples apart, {impl}: not checked ({check['error'][:200]})")
            continue
        error, leak = check["maxError"], check["leak"]
        print(f"samples apart, {impl}: max error {error:.2e} (a leak: {leak:.2e})")


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["auto", *PRESETS], default="auto")
    parser.add_argument("--out", default=os.environ.get("OUT"))
    parser.add_argument("--budget-s", type=float, default=None)
    parser.add_argument("--only", nargs="*", help="run names to keep (substring match)")
    args = parser.parse_args(argv)
    name = args.preset if args.preset != "auto" else ("gpu" if torch.cuda.is_available() else "cpu")
    one_process_group()
    preset = PRESETS[name]
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kubetune-gpu-bench-"))
    out = Path(args.out) if args.out else work
    out.mkdir(parents=True, exist_ok=True)
    dtype = torch.bfloat16 if preset.precision == "bf16" else torch.float32
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor()
    report: dict[str, Any] = {
        "preset": name,
        "machine": {
            "device": gpu or "cpu",
            "matmulTflops": matmul_tflops(dtype),
            "versions": versions(),
        },
        "parameters": parameter_count(preset.arch),
        "samplesApart": keeps_samples_apart(preset.arch, preset.precision),
        "runs": [],
    }
    leaking = {impl for impl, check in report["samplesApart"].items() if not check["apart"]}

    def save() -> None:
        report["seconds"] = round(time.monotonic() - started, 1)
        (out / "gpu-bench.json").write_text(json.dumps(report, indent=2))

    save()
    longest = max(r.length for r in preset.runs)
    samples = synthetic_samples(preset.samples, preset.arch["vocab_size"], longest)
    model = build_model(preset.arch, preset.precision, work / "model")
    runs = [r for r in preset.runs if not args.only or any(o in r.name for o in args.only)]
    for run in runs:
        entry: dict[str, Any] = {"name": run.name, **asdict(run)}
        report["runs"].append(entry)
        if args.budget_s is not None and time.monotonic() - started > args.budget_s:
            entry["error"] = "not run: time budget spent"
        elif run.attention in leaking:  # its figures would be of another computation
            entry["error"] = "not run: this attention failed the samples-apart check"
        elif measured := largest_micro_batch(run, preset, model, work, samples, entry):
            entry.update(measured)
            finish(entry, report["parameters"], report["machine"]["matmulTflops"], run)
            ratios(report)
        save()
    if out != work:
        shutil.rmtree(work, ignore_errors=True)  # the model and the prepared data
    table(report)
    print(f"written: {out / 'gpu-bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
