"""Loading the model for training: dtype, attention, LoRA/QLoRA, checkpointing; its parameter
counts and training FLOPs per token.

Pure factories in the TRL-script style (`quantization_config(...)`, `lora_config(...)`)
composed by `load_model`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import torch

from kubetune_api.config import TrainerConfig
from kubetune_api.inputs_spec import ModelSource
from kubetune_api.training_spec import LoraSpec, MethodSpec, Precision, TrainingSpec
from kubetune_trainer.runtime.log import log

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def attention_implementation(requested: str, gpus: bool) -> str:
    """flash-attention when installed (and on GPU), else PyTorch SDPA.

    Either keeps packed samples apart: both honour the restarting position ids (see
    data/packing.py). `eager` does too, slower.
    """
    if requested != "auto":
        return requested
    if gpus and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def quantization_config(method: MethodSpec) -> Any:
    if method.type != "qlora" or method.quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    q = method.quantization
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quantType,
        bnb_4bit_use_double_quant=q.doubleQuant,
        bnb_4bit_compute_dtype=getattr(torch, q.computeDtype),
        bnb_4bit_quant_storage=getattr(torch, q.computeDtype),  # lets FSDP/ZeRO-3 shard it
    )


def lora_config(method: MethodSpec) -> Any:
    if method.type == "full":
        return None
    from peft import LoraConfig

    lora = method.lora or LoraSpec()  # "defaults apply when omitted"
    targets = lora.targetModules
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        use_rslora=lora.useRslora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def prepare_for_training(model: Any) -> Any:
    """Settings every training forward needs.

    No KV cache: transformers only builds the block-diagonal mask for packed rows when no
    cache is passed, and `use_cache` defaults to on even when training.
    """
    model.config.use_cache = False
    return model


def generic_cpu_4bit_path(model: Any) -> None:
    """bitsandbytes' CPU kernel for 4-bit layers, taken without gradients in eval mode on CPUs
    with AVX512-BF16 (evaluation, DPO's reference pass), needs a layer's output size to be a
    multiple of 32 and its input size a multiple of the quantization block ("N must be
    divisible by block_n", or a failed reshape of the scales); other layers take
    bitsandbytes' generic path instead. Real models' layers all qualify; small test models'
    often do not."""
    from bitsandbytes.nn.modules import Linear4bit, Params4bit

    for module in model.modules():
        if not isinstance(module, Linear4bit):
            continue
        weight = module.weight
        state = weight.quant_state if isinstance(weight, Params4bit) else None
        block = getattr(state, "blocksize", 64)
        if module.out_features % 32 or module.in_features % block:
            module.support_avx512bf16_for_cpu = False


def load_model(
    path: str,
    source: ModelSource,
    method: MethodSpec,
    training: TrainingSpec,
    *,
    gpus: bool,
    device_map: Any = None,
    wrap_lora: bool = True,
) -> Any:
    """The model to train; LoRA/QLoRA wrapped in its adapter unless `wrap_lora` is off (the
    trainer then wraps it, as TRL's DPOTrainer does with `peft_config`)."""
    from transformers import AutoModelForCausalLM

    precision: Precision = training.precision
    quant = quantization_config(method)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=DTYPES[precision],
        attn_implementation=attention_implementation(source.attention, gpus),
        trust_remote_code=source.trustRemoteCode,
        quantization_config=quant,
        device_map=device_map,
    )
    prepare_for_training(model)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=training.gradientCheckpointing
        )
        if not gpus:
            generic_cpu_4bit_path(model)
    lora = lora_config(method)
    if lora is not None and wrap_lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    return model


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters. The total is transformers' `num_parameters`, which counts
    a 4-bit weight's values rather than the packed storage elements that `numel` sees (2 to 8
    per element with bitsandbytes, by its quant_storage dtype)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, base.num_parameters()


def flops_per_token(model: Any) -> float:
    """Training FLOPs per token: 6 per trainable parameter (forward, input and weight
    gradients), 4 per frozen one (no weight gradient), so 6N for full fine-tuning and about 4N
    for LoRA/QLoRA."""
    trainable, total = parameter_counts(model)
    return 6.0 * trainable + 4.0 * (total - trainable)


def describe(model: Any, config: TrainerConfig) -> None:
    trainable, total = parameter_counts(model)
    quantized = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if type(m).__name__ in ("Linear4bit", "Linear8bitLt")
        }
    )
    log(
        f"world size {os.environ.get('WORLD_SIZE', '1')}, strategy {config.topology.strategy}, "
        f"{config.method.type}: {trainable:,} of {total:,} parameters trainable"
        + (f", quantized layers: {', '.join(quantized)}" if quantized else "")
    )
