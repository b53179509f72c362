"""Data-parallel strategy → what transformers' Trainer takes (DeepSpeed config, FSDP config).

Values left "auto" are filled by the Trainer from the training arguments, so batch sizes,
clipping and precision are stated once, in the FineTuneJob.
"""

from __future__ import annotations

from typing import Any

from kubetune_api.config import Strategy


def deepspeed_config(strategy: Strategy) -> dict[str, Any] | None:
    if not strategy.startswith("deepspeed"):
        return None
    zero: dict[str, Any] = {
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if strategy == "deepspeed-zero2":
        zero.update({"stage": 2, "allgather_partitions": True, "reduce_scatter": True})
    else:
        zero.update(
            {
                "stage": 3,
                "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto",
                # export writes one consolidated model instead of per-rank shards
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if strategy == "deepspeed-zero3-offload":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "zero_allow_untested_optimizer": True,
    }


def fsdp_arguments(strategy: Strategy, model: Any, checkpointing: bool) -> dict[str, Any]:
    """TrainingArguments for FSDP: shard every decoder layer; LoRA needs use_orig_params."""
    if strategy != "fsdp":
        return {}
    layers = sorted(getattr(model, "_no_split_modules", None) or [])
    config: dict[str, Any] = {"use_orig_params": True, "activation_checkpointing": checkpointing}
    if layers:
        config["transformer_layer_cls_to_wrap"] = layers
    return {"fsdp": True, "fsdp_config": config}  # full sharding (FSDP2), per decoder layer
