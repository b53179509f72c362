"""GGUF export, checked by llama.cpp itself.

Seed 2 (examples/seed2-glaive-chatml-lora.yaml: LoRA, Glaive data in ChatML, adapter + merged
+ GGUF) scaled down to a tiny SentencePiece Llama (tiny_spm.py) runs as `kubetune run` runs it;
then llama.cpp (through llama-cpp-python, the same pinned release that converted and quantized)
loads each GGUF and must tokenize the chat template's text as Hugging Face does, carry the
chat template, give next-token log-probabilities close to the merged model's in transformers,
and generate. The quantization table is checked against llama.cpp's own quantizer source.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.api import parse_job
from kubetune_api.config import GgufQuantization
from tests.support import seed_data
from tests.support.factories import REPO
from tests.support.jobs import job_dir, logged_losses, manifest, train
from tests.support.tiers import unavailable
from tests.support.tiny_spm import build_tiny_llama_spm

try:
    import llama_cpp
except ImportError:
    unavailable(
        "trainer", "GGUF export needs the gguf extra (llama-cpp-python): make test installs it"
    )

QUANTIZATIONS = ["f16", "q8_0", "q4_k_m"]
# llama.cpp's own yardsticks for a quantization (llama-perplexity --kl-divergence): the mean
# KL divergence of llama.cpp's next-token distribution from the reference's, and how often
# both pick the same likeliest token, over every position of the prompts. f16 holds the
# bf16-trained weights exactly (only the arithmetic differs); Q8_0 rounds each weight to 1/127
# of its block's largest, Q4_K_M to 4-6 bits. Measured: f16 KL 3e-7, top-1 100%; q8_0 KL
# 1e-4, top-1 100%; q4_k_m KL 0.011, top-1 91% (0.035 and 93% with 60 pretraining steps).
MAX_MEAN_KL = {"f16": 1e-4, "q8_0": 5e-3, "q4_k_m": 0.1}
MIN_TOP1 = {"f16": 0.95, "q8_0": 0.9, "q4_k_m": 0.8}
F16_TIE = 0.02  # log p: f16 weights move the tiny model's logits by less than this
CHATS = [
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Weather in Oslo?"},
    ],
    [{"role": "user", "content": "What is two plus three?"}],
]


def llama_cpp_dir() -> Path:
    from kubetune_trainer.runtime.llama_cpp import llama_cpp_dir

    return llama_cpp_dir()


def test_quantizations_are_llama_quantizes_own() -> None:
    """Every offered quantization is one of llama-quantize's options (same name, same
    llama_ftype) in the pinned llama.cpp, and a constant of the compiled bindings."""
    from kubetune_trainer.export.gguf import FTYPES

    source = (llama_cpp_dir() / "tools" / "quantize" / "quantize.cpp").read_text()
    options = dict(re.findall(r'\{\s*"(\w+)",\s*(LLAMA_FTYPE_\w+)', source))
    assert set(FTYPES) == set(typing.get_args(GgufQuantization))
    for name, ftype in FTYPES.items():
        assert options[name.upper()] == ftype, name
        assert isinstance(getattr(llama_cpp, ftype), int), ftype


def test_unconvertible_tokenizer_is_refused_before_training(tiny_model_dir: Path) -> None:
    """builtin://tiny-llama's trained BPE tokenizer is not one llama.cpp's converter knows."""
    from kubetune_trainer.export.gguf import GgufError, check_convertible

    with pytest.raises(GgufError, match=r"remove gguf from output\.formats") as error:
        check_convertible(tiny_model_dir)
    assert "pre-tokenizer was not recognized" in str(error.value)


def test_unsupported_architecture_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from kubetune_trainer.export.gguf import GgufError, check_convertible

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["architectures"] = ["MadeUpForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(GgufError, match="MadeUpForCausalLM is not supported"):
        check_convertible(model)


@pytest.fixture(scope="module")
def seed2_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("gguf")
    model = build_tiny_llama_spm(base / "tiny-llama-spm")
    data = base / "glaive.jsonl"
    data.write_bytes(seed_data.glaive(n=64))
    doc = yaml.safe_load((REPO / "examples" / "seed2-glaive-chatml-lora.yaml").read_text())
    spec = doc["spec"]
    assert spec["output"]["formats"] == ["adapter", "merged", "gguf"]
    spec["model"] = {"source": str(model)}
    spec["dataset"]["sources"] = [{"source": str(data), "format": "glaive"}]
    spec["training"].update(
        maxSteps=6, maxLength=256, microBatchSize=4, globalBatchSize=8, evalSteps=3,
        saveSteps=3, loggingSteps=2, learningRate=1e-3,
    )  # fmt: skip
    spec["training"].pop("epochs")
    spec["distributed"] = {"gpusPerNode": 0}
    spec.pop("resources")
    spec["output"]["gguf"]["quantizations"] = QUANTIZATIONS
    job = parse_job(doc)
    workspace = base / "workspace"
    result = train(job, workspace)
    log = "".join(p.read_text() for p in (job_dir(workspace, job) / "logs").glob("*.log"))
    assert result.ok, log[-3000:]
    return {"job": job, "workspace": workspace, "manifest": manifest(workspace, job), "log": log}


@pytest.fixture(scope="module")
def merged(seed2_run: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = seed2_run["manifest"]["outputs"]["merged"]
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()
    return model, AutoTokenizer.from_pretrained(path)


def test_seed2_exports_adapter_merged_and_gguf(seed2_run: dict[str, Any]) -> None:
    outputs = seed2_run["manifest"]["outputs"]
    assert (Path(outputs["adapter"]) / "adapter_model.safetensors").is_file()
    assert (Path(outputs["merged"]) / "model.safetensors").is_file()
    assert list(outputs["gguf"]) == QUANTIZATIONS
    for quantization, file in outputs["gguf"].items():
        path = Path(file["path"])
        assert path.name == f"{seed2_run['job'].name}-{quantization}.gguf"
        assert path.stat().st_size == file["sizeBytes"]
        print(f"{quantization}: {file['sizeBytes']} bytes")
    sizes = {q: f["sizeBytes"] for q, f in outputs["gguf"].items()}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"]
    assert not list(Path(outputs["merged"]).parent.glob("gguf/.intermediate*"))
    assert len(logged_losses(seed2_run["workspace"], seed2_run["job"])) >= 2


def test_k_quants_apply_to_every_matrix(seed2_run: dict[str, Any]) -> None:
    """The tiny model's sizes are multiples of 256, so Q4_K_M has no fallback types."""
    import sys

    sys.path.insert(0, str(llama_cpp_dir() / "gguf-py"))
    from gguf import GGUFReader

    path = seed2_run["manifest"]["outputs"]["gguf"]["q4_k_m"]["path"]
    types = {t.name: t.tensor_type.name for t in GGUFReader(path).tensors}
    matrices = {n: t for n, t in types.items() if n.endswith(".weight") and "norm" not in n}
    assert set(matrices.values()) <= {"Q4_K", "Q6_K"}, matrices  # Q4_K_M: Q6_K for some
    assert "Q4_K" in matrices.values()


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_llama_cpp_agrees_with_transformers(
    seed2_run: dict[str, Any], merged: tuple[Any, Any], quantization: str
) -> None:
    import numpy as np
    import torch

    model, tokenizer = merged
    path = seed2_run["manifest"]["outputs"]["gguf"][quantization]["path"]
    llm = llama_cpp.Llama(
        model_path=path, n_ctx=512, logits_all=True, n_threads=1, verbose=False, seed=0
    )
    # The chat template travels inside the GGUF, as trained with.
    template = Path(seed2_run["manifest"]["outputs"]["merged"]) / "chat_template.jinja"
    assert llm.metadata["tokenizer.chat_template"] == template.read_text()
    # Special tokens of the template round-trip: one token each, the same id, the same text.
    for special in ("<|im_start|>", "<|im_end|>"):
        ids = llm.tokenize(special.encode(), add_bos=False, special=True)
        assert ids == [tokenizer.convert_tokens_to_ids(special)], special
        assert llm.detokenize(ids, special=True).decode() == special
    kl, same = [], []
    for chat in CHATS:
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids, text
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        expected = torch.log_softmax(logits, -1).numpy()
        llm.reset()
        llm.eval(ids)
        scores = np.array(llm.scores[: len(ids)], dtype=np.float64)
        got = scores - np.logaddexp.reduce(scores, axis=-1, keepdims=True)
        kl += list((np.exp(expected) * (expected - got)).sum(-1))
        same += list(expected.argmax(-1) == got.argmax(-1))
        if quantization == "f16":
            # The reference's likeliest token gets the same log p, and where the two
            # pick different tokens it is a tie: the reference gives llama.cpp's pick
            # a log p within F16_TIE of its own best (f16 rounding reorders near-ties).
            top = expected.argmax(-1)[:, None]
            diff = np.take_along_axis(expected, top, -1) - np.take_along_axis(got, top, -1)
            assert np.abs(diff).max() < F16_TIE
            picked = got.argmax(-1)[:, None]
            gap = expected.max(-1) - np.take_along_axis(expected, picked, -1)[:, 0]
            assert gap.max() < F16_TIE, gap
    mean_kl, top1 = float(np.mean(kl)), float(np.mean(same))
    print(f"{quantization}: mean KL {mean_kl:.2e}, same top-1 {top1:.1%} over {len(kl)} positions")
    assert mean_kl < MAX_MEAN_KL[quantization]
    assert top1 >= MIN_TOP1[quantization]
    # And it generates: 8 greedy tokens; from f16, the ones transformers picks.
    prompt = tokenizer.apply_chat_template(CHATS[0], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    llm.reset()
    generated: list[int] = []
    for token in llm.generate(ids, temp=0.0):
        generated.append(token)
        if len(generated) == 8:
            break
    print(f"{quantization}: generates {json.dumps(tokenizer.decode(generated))}")
    assert len(generated) == 8
    if quantization == "f16":  # each greedy pick is transformers' pick, or ties with it
        sequence = list(ids)
        with torch.no_grad():
            for token in generated:
                logp = torch.log_softmax(model(torch.tensor([sequence])).logits[0, -1].double(), -1)
                assert float(logp.max() - logp[token]) < F16_TIE, (token, int(logp.argmax()))
                sequence.append(token)
