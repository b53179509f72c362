"""GPU evidence: kubetune's trainer path on Llama-3-8B's architecture, against TRL's
SFTTrainer in the same run (docs/benchmarks.md, "GPU").

    python bench/gpu/run.py                   # `gpu` on a CUDA machine, else `cpu`
    python bench/gpu/run.py --preset cpu      # a tiny model of the same architecture (CI)

Per run: real tokens/s, MFU against the bf16 matrix rate measured at the start (6N FLOPs per
token for full fine-tuning, 4N for LoRA/QLoRA, N the base model's parameters; attention FLOPs
in their own column), peak GPU memory, and the ratio to TRL's faster run (packed or padded)
of the same method and length. The weights are random (throughput does not depend on them)
and the data is token ids with chat-like long-tailed lengths (no tokenizer or download). Our side is
kubetune's own path: the prepared-dataset format written by `prepare.write_split` (best-fit
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
import gc
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "trainer"))
sys.path.insert(0, str(REPO / "bench"))

from common import long_tailed_lengths  # noqa: E402

LLAMA_3_8B = {  # meta-llama/Meta-Llama-3-8B's config.json, the fields that shape the compute
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
TINY = {**LLAMA_3_8B, "hidden_size": 64, "intermediate_size": 224, "num_hidden_layers": 2}
TINY.update(num_attention_heads=4, num_key_value_heads=1, vocab_size=1024)  # GQA 4:1 like 32/8


@dataclass
class Run:
    side: str  # "kubetune" | "trl"
    method: str  # "lora" | "qlora" | "full"
    length: int
    attention: str
    micro: int
    checkpointing: bool = True
    optimizer: str = "adamw_torch"
    packing: bool = True  # TRL's side: False pads each batch to its longest sample

    @property
    def name(self) -> str:
        gc_ = "" if self.checkpointing else " no-gc"
        padded = "" if self.packing else " padded"
        return f"{self.side} {self.method} {self.length} {self.attention}{gc_}{padded}"


@dataclass
class Preset:
    arch: dict[str, Any]
    precision: str  # bf16 on GPUs; fp32 on CPUs (bf16 matmuls there are emulated and slow)
    samples: int
    warmup: int
    steps: int
    runs: list[Run] = field(default_factory=list)


def _pair(method: str, length: int, attention: str, micro: int, **kw: Any) -> list[Run]:
    return [Run(side, method, length, attention, micro, **kw) for side in ("kubetune", "trl")]


PRESETS = {
    "gpu": Preset(
        LLAMA_3_8B,
        "bf16",
        samples=1500,
        warmup=3,
        steps=8,
        runs=[
            *_pair("qlora", 2048, "sdpa", 8),  # the seed-5 recipe: the bar is on this pair
            Run("trl", "qlora", 2048, "sdpa", 8, packing=False),
            Run("kubetune", "qlora", 2048, "flex_attention", 8),
            *_pair("lora", 2048, "sdpa", 8),
            Run("kubetune", "lora", 2048, "flex_attention", 8),
            Run("kubetune", "lora", 2048, "sdpa", 4, checkpointing=False),
            Run("kubetune", "qlora", 4096, "sdpa", 4),
            Run("kubetune", "qlora", 4096, "flex_attention", 4),
            Run("kubetune", "full", 2048, "sdpa", 8, optimizer="adamw_8bit"),
            Run("kubetune", "lora", 2048, "eager", 4),
        ],
    ),
    "cpu": Preset(
        TINY,
        "fp32",
        samples=300,
        warmup=1,
        steps=3,
        runs=[
            *_pair("qlora", 256, "sdpa", 4),  # FlexAttention has no backward on CPUs
            *_pair("lora", 256, "sdpa", 4),
            Run("trl", "lora", 256, "sdpa", 4, packing=False),
            Run("kubetune", "lora", 512, "eager", 2, checkpointing=False),
            Run("kubetune", "full", 256, "sdpa", 4, optimizer="adamw_8bit"),
        ],
    ),
}
ATTENTIONS = ("sdpa", "flex_attention", "eager")


def device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_tflops(dtype: Any) -> float:
    """The measured dense matrix rate of this device (TFLOP/s): the mean of timed products after
    warm-ups, 8192³ on a GPU, 1024³ on a CPU."""
    import torch

    n, reps = (8192, 10) if torch.cuda.is_available() else (1024, 5)
    a = torch.randn(n, n, dtype=dtype, device=device())
    b = torch.randn(n, n, dtype=dtype, device=device())
    for _ in range(3):
        a @ b
    synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def synthetic_samples(count: int, vocab: int, cap: int, seed: int = 0) -> list[Any]:
    """Token ids with chat-like long-tailed lengths: bench/common.py's log-normal ×4 (median
    about 400 tokens, a tail to `cap`); the first third of each sample is prompt (no loss)."""
    from kubetune_trainer.data.tokenize import IGNORE, Encoded

    rng = random.Random(seed)
    samples = []
    for length in long_tailed_lengths(count, seed, cap=cap // 4):
        n = 4 * length
        ids = [rng.randrange(4, vocab) for _ in range(n)]
        prompt = n // 3
        samples.append(Encoded(ids, [IGNORE] * prompt + ids[prompt:]))
    return samples


def build_model(arch: dict[str, Any], precision: str, target: Path) -> Path:
    """A randomly initialised model of `arch`, saved with its tokenizer (only its padding id is
    read) the way models arrive on the volume; built on the device in its training dtype."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from kubetune_trainer.modeling import DTYPES
    from kubetune_trainer.tiny import train_tokenizer

    if (target / "config.json").exists():
        return target
    tokenizer = train_tokenizer()
    config = LlamaConfig(
        **arch,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with device():
        model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[precision])
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    del model
    release_memory()
    return target


def parameter_count(arch: dict[str, Any]) -> int:
    """N: the model's parameters, counted on the meta device (nothing allocated)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(LlamaConfig(**arch))
    return sum(p.numel() for p in model.parameters())


def attention_flops_per_token(arch: dict[str, Any], lengths: list[int]) -> float:
    """Causal attention's training FLOPs per token of samples of these lengths: QKᵀ and AV over
    the token's own sample so far, forward and backward (×3), 12 · layers · hidden · the mean
    context (position + 1). Packing keeps samples apart, so a row's length does not enter."""
    mean_context = sum(n * (n + 1) / 2 for n in lengths) / sum(lengths)
    return 12.0 * arch["num_hidden_layers"] * arch["hidden_size"] * mean_context


def keeps_samples_apart(arch: dict[str, Any], precision: str) -> dict[str, Any]:
    """For each attention implementation, on this device and dtype, with a 2-layer model of
    `arch`: the logits of three samples packed in one row (restarting position ids, no mask,
    as kubetune's collator feeds them) against each sample alone. `leak` is the same row
    without position ids (attention crosses samples): a real leak's size, for scale."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from kubetune_trainer.modeling import DTYPES, prepare_for_training

    torch.manual_seed(0)
    with device():
        model = AutoModelForCausalLM.from_config(
            LlamaConfig(**{**arch, "num_hidden_layers": 2}), dtype=DTYPES[precision]
        )
    prepare_for_training(model).eval()
    generator = torch.Generator().manual_seed(0)
    lengths = (37, 91, 64)
    samples = [torch.randint(4, arch["vocab_size"], (n,), generator=generator) for n in lengths]
    ids = torch.cat(samples)[None].to(device())
    positions = torch.cat([torch.arange(n) for n in lengths])[None].to(device())
    result = {}
    for impl in ATTENTIONS:
        try:
            model.set_attn_implementation(impl)
            with torch.no_grad():
                alone = [model(input_ids=s[None].to(device())).logits[0] for s in samples]
                packed = model(input_ids=ids, position_ids=positions).logits[0]
                leak = model(input_ids=ids).logits[0]
        except Exception as failure:  # not available here: its runs are skipped, not the bench
            result[impl] = {"apart": False, "error": f"{type(failure).__name__}: {failure}"}
            continue
        error = (packed - torch.cat(alone)).abs().max().item()
        scale = (leak - torch.cat(alone)).abs().max().item()
        result[impl] = {"maxError": error, "leak": scale, "apart": error <= 0.1 * scale}
    del model
    release_memory()
    return result


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


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


class CountingCollator:
    """Wraps a collator and counts the real tokens (the rows' own ids) it is handed."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.tokens = inner, 0

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        self.tokens += sum(len(row["input_ids"]) for row in rows)
        return self.inner(rows)


def clock(counter: CountingCollator, warmup: int, steps: int) -> Any:
    """A callback timing the optimizer steps after `warmup`: (seconds, tokens). The data loader
    collates one batch ahead, at both ends alike, so the count matches the steps timed."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # type: ignore[misc]
        seconds = tokens = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if state.global_step == warmup:
                synchronize()
                self.start, self.start_tokens = time.perf_counter(), counter.tokens

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if state.global_step == warmup + steps:
                synchronize()
                self.seconds = time.perf_counter() - self.start
                self.tokens = counter.tokens - self.start_tokens
                control.should_save = False  # the Trainer's save at the last step: not timed

    return Clock()


def trainer_config(run: Run, preset: Preset, model: Path, job: Path) -> Any:
    from kubetune_trainer.config import TrainerConfig

    quantization = {"computeDtype": "bfloat16" if preset.precision == "bf16" else "float32"}
    gpus = device().type == "cuda"
    config = TrainerConfig.model_validate(
        {
            "jobName": "bench",
            "model": {"source": str(model)},
            "dataset": {"sources": [{"source": "synthetic.jsonl"}]},
            "method": {
                "type": run.method,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
                **({"quantization": quantization} if run.method == "qlora" else {}),
            },
            "training": {
                "maxSteps": preset.warmup + preset.steps,
                "microBatchSize": run.micro,
                "maxLength": run.length,
                "gradientCheckpointing": run.checkpointing,
                "optimizer": run.optimizer,
                "precision": preset.precision,
                "warmupRatio": 0.0,
                "saveSteps": 10**6,
                "loggingSteps": 10**6,
            },
            "output": {},
            "tracking": {"tensorboard": False},
            "topology": {"gpus": gpus},
            "paths": {
                "workspace": str(job),
                "cache": str(job / "cache"),
                "job": str(job),
                "output": str(job / "output"),
            },
        }
    )
    # `flex_attention` is not (yet) a value of spec.model.attention: the bench sets it past the
    # API's validation to measure it; modeling.load_model passes any named implementation on.
    config.model = config.model.model_copy(update={"attention": run.attention})
    return config


def prepared_rows(config: Any, samples: list[Any], job: Path) -> list[dict[str, Any]]:
    """The run's packed training split in `prepare`'s own layout (`prepared.json` beside it)."""
    import datasets

    from kubetune_trainer.prepare import write_split

    data = job / "dataset"
    kept = [s for s in samples if len(s.input_ids) <= config.training.maxLength]
    write_split("train", kept, config, data)
    manifest = {"model": config.model.source, "dataset": str(data)}
    (job / "prepared.json").write_text(json.dumps(manifest))
    return list(datasets.load_from_disk(str(data / "train")))


def kubetune_trainer(run: Run, preset: Preset, model: Path, job: Path, samples: list[Any]) -> Any:
    from kubetune_trainer.progress import FileSink
    from kubetune_trainer.train import build_trainer, load_prepared

    config = trainer_config(run, preset, model, job)
    rows = prepared_rows(config, samples, job)
    trainer, _ = build_trainer(config, load_prepared(config), FileSink(str(job)))
    return trainer, rows


def trl_trainer(run: Run, preset: Preset, model: Path, job: Path, samples: list[Any]) -> Any:
    """TRL's SFTTrainer on the same model, ids, LoRA and settings, with its own packing
    (best-fit decreasing into padding-free rows with restarting position ids) or, with
    `packing` off, batches padded to their longest sample. Without flash-attention, which is not
    installed, a padding-free row of micro × length tokens is one long sequence for SDPA, so the
    padded run is kept as a baseline too; the ratio takes TRL's faster one."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    dtype = torch.bfloat16 if preset.precision == "bf16" else torch.float32
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    gpus = device().type == "cuda"
    base = AutoModelForCausalLM.from_pretrained(
        model,
        dtype=dtype,
        attn_implementation=run.attention,
        quantization_config=quant if run.method == "qlora" else None,
        device_map={"": 0} if gpus else None,
    )
    kept = [s.input_ids for s in samples if len(s.input_ids) <= run.length]
    data = datasets.Dataset.from_dict({"input_ids": kept})
    args = SFTConfig(
        output_dir=str(job),
        max_length=run.length,
        packing=run.packing,
        per_device_train_batch_size=run.micro,
        max_steps=preset.warmup + preset.steps,
        learning_rate=2e-4,
        optim=run.optimizer,
        bf16=preset.precision == "bf16",
        use_cpu=not gpus,
        gradient_checkpointing=run.checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        report_to="none",
        save_strategy="no",
        logging_steps=10**6,
        disable_tqdm=True,
        seed=42,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = SFTTrainer(
        model=base,
        args=args,
        train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(model),
        peft_config=None if run.method == "full" else lora,
    )
    return trainer, list(trainer.train_dataset)


def measure(
    run: Run, preset: Preset, model: Path, work: Path, samples: list[Any]
) -> dict[str, Any]:
    import torch

    job = work / run.name.replace(" ", "-")
    job.mkdir(parents=True, exist_ok=True)
    build = kubetune_trainer if run.side == "kubetune" else trl_trainer
    release_memory()
    trainer, rows = build(run, preset, model, job, samples)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    timing = clock(counter, preset.warmup, preset.steps)
    trainer.add_callback(timing)
    trainer.train()
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    lengths = [len(s.input_ids) for s in samples if len(s.input_ids) <= run.length]
    return {
        "tokensPerSecond": timing.tokens / timing.seconds,
        "tokens": int(timing.tokens),
        "seconds": round(timing.seconds, 3),
        "peakGiB": peak,
        "rows": len(rows),
        # real tokens ÷ row capacity, packed runs (unpacked rows are padded per batch instead)
        "fill": sum(len(r["input_ids"]) for r in rows) / (len(rows) * run.length)
        if run.packing
        else None,
        "attentionFlopsPerToken": attention_flops_per_token(preset.arch, lengths),
    }


def largest_micro_batch(
    run: Run, preset: Preset, model: Path, work: Path, samples: list[Any], entry: dict[str, Any]
) -> dict[str, Any] | None:
    """`measure`, halving the micro-batch after running out of GPU memory; any other failure is
    recorded in the entry (the table shows it) and the next run goes on."""
    import torch

    while True:
        print(f"--- {run.name} (micro {run.micro})", flush=True)
        error = None
        try:
            return measure(run, preset, model, work, samples)
        except torch.cuda.OutOfMemoryError:
            error = f"micro {run.micro}: out of GPU memory"
        except Exception as failure:  # shown in the table; the bench goes on
            error = f"{type(failure).__name__}: {str(failure)[:300]}"
        release_memory()  # after the except block: its traceback held the trainer
        entry["error"] = "; ".join(filter(None, [entry.get("error"), error]))
        print(entry["error"], flush=True)
        if not error.endswith("out of GPU memory") or run.micro == 1:
            return None
        run.micro //= 2
        entry["micro"] = run.micro


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
