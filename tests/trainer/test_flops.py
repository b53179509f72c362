"""The FLOPs per token behind the reported MFU count a 4-bit model's parameters as values, not
as bitsandbytes' packed storage elements: QLoRA reports the same model FLOPs as LoRA of the
same base. The reference count is the unquantized checkpoint's own `numel`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kubetune_api.inputs_spec import ModelSource
from kubetune_api.training_spec import MethodSpec, TrainingSpec

if TYPE_CHECKING:
    from torch.nn import Module


def load(path: Path, method: dict[str, object]) -> Module:
    from kubetune_trainer.training.modeling import load_model

    model: Module = load_model(
        str(path),
        ModelSource(source=str(path)),
        MethodSpec.model_validate(method),
        TrainingSpec(precision="fp32", gradientCheckpointing=False),
        gpus=False,
    )
    return model


@pytest.mark.parametrize("storage", ["float32", "bfloat16"])
def test_qlora_counts_the_same_parameters_as_lora(tiny_model_dir: Path, storage: str) -> None:
    from transformers import AutoModelForCausalLM

    from kubetune_trainer.training.modeling import flops_per_token

    base = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    full = load(tiny_model_dir, {"type": "full"})
    lora = load(tiny_model_dir, {"type": "lora"})
    qlora = load(tiny_model_dir, {"type": "qlora", "quantization": {"computeDtype": storage}})
    adapter = sum(p.numel() for p in lora.parameters() if p.requires_grad)

    assert flops_per_token(full) == 6 * base
    assert flops_per_token(lora) == 4 * base + 6 * adapter
    assert flops_per_token(qlora) == flops_per_token(lora)
