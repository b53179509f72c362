"""`builtin://tiny-llama` with Llama 3's real tokenizer (`model.tokenizer: llama-bpe`), from data
to a GGUF file that llama.cpp loads.

examples/tiny-gguf.yaml, scaled down, runs as `kubetune run` runs it: the trainer builds the
tiny model with the tokenizer read from llama.cpp's reference vocabulary, fine-tunes it in full
for a few steps with the llama-3 template, and exports GGUF with llama.cpp's own converter. Then llama.cpp
(llama-cpp-python, the same pinned release) loads the file and is the judge: the converter
recognised the pre-tokenizer as Llama 3's, every `.inp` line llama.cpp ships with the vocabulary
tokenizes to the `.out` ids that Meta's original tokenizer gives, and a chat prompt rendered by
transformers with the trained template tokenizes as in training and generates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.api import parse_job
from tests.support.factories import REPO
from tests.support.jobs import job_dir, logged_losses, manifest, train
from tests.support.tiers import unavailable
from tests.support.vocabularies import reference_cases

try:
    import llama_cpp
except ImportError:
    unavailable(
        "trainer", "GGUF export needs the gguf extra (llama-cpp-python): make test installs it"
    )

CHAT = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What colour is snow?"},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("real-tokenizer")
    doc = yaml.safe_load((REPO / "examples" / "tiny-gguf.yaml").read_text())
    spec = doc["spec"]
    assert spec["model"] == {"source": "builtin://tiny-llama", "tokenizer": "llama-bpe"}
    assert spec["dataset"]["chatTemplate"] == {"builtin": "llama-3"}
    spec["dataset"]["sources"][0]["source"] = str(REPO / "examples" / "data" / "tiny-chat.jsonl")
    spec["dataset"]["sources"][0]["sampleLimit"] = 64
    spec["training"].update(maxSteps=4, saveSteps=4, loggingSteps=2)
    spec["output"]["gguf"]["quantizations"] = ["f16"]
    job = parse_job(doc)
    workspace = base / "workspace"
    result = train(job, workspace)
    log = "".join(p.read_text() for p in (job_dir(workspace, job) / "logs").glob("*.log"))
    assert result.ok, log[-3000:]
    return {"job": job, "workspace": workspace, "manifest": manifest(workspace, job), "log": log}


def test_tiny_llama_with_llama3_tokenizer_exports_a_gguf_llama_cpp_tokenizes_alike(
    run: dict[str, Any],
) -> None:
    from transformers import AutoTokenizer

    outputs = run["manifest"]["outputs"]
    merged = Path(outputs["merged"])
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert len(tokenizer) == 128256  # Llama 3's vocabulary, nothing added
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<|begin_of_text|>", "<|eot_id|>")
    assert len(logged_losses(run["workspace"], run["job"])) >= 2
    assert "gguf: llama.cpp's converter accepts" in run["log"]

    llm = llama_cpp.Llama(
        model_path=outputs["gguf"]["f16"]["path"], n_ctx=256, n_threads=1, verbose=False
    )
    assert llm.n_vocab() == 128256
    # The converter knew the tokenizer by its hash: Llama 3's pre-tokenizer, not a fallback.
    assert llm.metadata["tokenizer.ggml.pre"] == "llama-bpe"
    assert llm.metadata["tokenizer.chat_template"] == (merged / "chat_template.jinja").read_text()
    # Every reference line: llama.cpp's tokenization of the exported file equals Meta's.
    cases = reference_cases("llama-bpe")
    assert len(cases) >= 46
    wrong = [
        text
        for text, ids in cases
        if llm.tokenize(text.encode(), add_bos=False, special=False) != ids
    ]
    assert wrong == []
    # A chat prompt as trained (transformers renders the template; BOS from the template
    # itself), the same ids in llama.cpp, which then generates from it.
    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert isinstance(text, str)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
    assert tokenizer("plain")["input_ids"][0] == tokenizer.bos_token_id  # BOS as Llama 3's
    assert llm.tokenize(b"plain", add_bos=True)[0] == tokenizer.bos_token_id
    generated = []
    for token in llm.generate(ids, temp=0.0):
        generated.append(token)
        if len(generated) == 4:
            break
    assert len(generated) == 4
