"""The trainer image holds everything the seed examples import or build just in time: the
whole training stack imports, `ds_report` runs, and DeepSpeed's cpu_adam (ZeRO offload) builds
in the image with the compiler it ships."""

from __future__ import annotations

import pytest

from tests.support.images import BUILD_TIMEOUT_S, docker_run

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)

# What the trainer and the seed examples' paths import: methods (LoRA, QLoRA's bitsandbytes),
# strategies (DDP, FSDP via accelerate, DeepSpeed ZeRO), data, tracking, and the trainer itself.
STACK = (
    "torch",
    "torch.distributed.run",
    "transformers",
    "peft",
    "datasets",
    "accelerate",
    "bitsandbytes",
    "deepspeed",
    "tokenizers",
    "safetensors",
    "wandb",
    "tensorboard",
    "jinja2",
    "kubetune_trainer",
    "kubetune_trainer.train",
    "kubetune_trainer.stages.prepare",
    "kubetune_trainer.export.gguf",
    "llama_cpp",  # GGUF export: llama.cpp's quantizer, built from the sdist in the image
    "sentencepiece",
)


def test_the_training_stack_imports(trainer_image: str) -> None:
    script = "import importlib\nfor m in %r: importlib.import_module(m)\nprint('imported', len(%r))"
    result = docker_run(trainer_image, [], ["python", "-c", script % (STACK, STACK)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"imported {len(STACK)}" in result.stdout


def test_llama_cpp_converter_is_in_the_image(trainer_image: str) -> None:
    """GGUF export's converter, from the same llama-cpp-python sdist (KUBETUNE_LLAMA_CPP)."""
    script = "from kubetune_trainer.runtime.llama_cpp import llama_cpp_dir; print(llama_cpp_dir())"
    result = docker_run(trainer_image, [], ["python", "-c", script])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "/opt/llama.cpp"


def test_ds_report(trainer_image: str) -> None:
    result = docker_run(trainer_image, ["--env", "DS_ACCELERATOR=cpu"], ["ds_report"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DeepSpeed general environment info" in result.stdout
    cpu_adam = next(line for line in result.stdout.splitlines() if line.startswith("cpu_adam"))
    assert "[OKAY]" in cpu_adam, cpu_adam  # compatible: buildable just in time here


def test_cpu_adam_builds_just_in_time(trainer_image: str) -> None:
    """ZeRO-3 offload's optimizer: compiled on first use by the image's g++ and ninja, as uid
    1000 into TORCH_EXTENSIONS_DIR (a pod points it at the workspace to build it once)."""
    script = (
        "from deepspeed.ops.op_builder import CPUAdamBuilder\n"
        "import torch\n"
        "from deepspeed.ops.adam import DeepSpeedCPUAdam\n"
        "p = torch.nn.Parameter(torch.ones(4))\n"
        "opt = DeepSpeedCPUAdam([p], lr=0.1)\n"
        "p.grad = torch.ones(4)\n"
        "opt.step()\n"
        "assert float(p.sum()) < 4, p\n"
        "print('cpu_adam ok')\n"
    )
    result = docker_run(
        trainer_image,
        ["--env", "DS_ACCELERATOR=cpu", "--env", "TORCH_EXTENSIONS_DIR=/tmp/ext"],
        ["python", "-c", script],
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "cpu_adam ok" in result.stdout
