"""The bench's workload: Llama-3-8B's architecture (and a tiny one of the same shape), the
runs of each preset, the synthetic data, the model on disk, the device's matrix rate and the
samples-apart check of each attention implementation (bench/gpu/run.py)."""

from __future__ import annotations

import gc
import random
import sys
import time
from dataclasses import dataclass, field
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

    from kubetune_trainer.storage.tiny import train_tokenizer
    from kubetune_trainer.training.modeling import DTYPES

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
    total: int = sum(p.numel() for p in model.parameters())
    return total


def attention_flops_per_token(arch: dict[str, Any], lengths: list[int]) -> float:
    """Causal attention's training FLOPs per token of samples of these lengths: QKᵀ and AV over
    the token's own sample so far, forward and backward (×3), 12 · layers · hidden · the mean
    context (position + 1). Packing keeps samples apart, so a row's length does not enter."""
    mean_context = sum(n * (n + 1) / 2 for n in lengths) / sum(lengths)
    layers: int = arch["num_hidden_layers"]
    hidden: int = arch["hidden_size"]
    return 12.0 * layers * hidden * mean_context


def keeps_samples_apart(arch: dict[str, Any], precision: str) -> dict[str, Any]:
    """For each attention implementation, on this device and dtype, with a 2-layer model of
    `arch`: the logits of three samples packed in one row (restarting position ids, no mask,
    as kubetune's collator feeds them) against each sample alone. `leak` is the same row
    without position ids (attention crosses samples): a real leak's size, for scale."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from kubetune_trainer.training.modeling import DTYPES, prepare_for_training

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


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
