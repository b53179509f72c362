"""GGUF export: the merged model → GGUF files, by llama.cpp's own tools at one pinned version.

llama.cpp's `convert_hf_to_gguf.py` writes the f16 (or bf16) file: weights, tokenizer and the
chat template from the model folder's tokenizer files (`chat_template.jinja`, the template the
data was rendered with). llama.cpp's quantizer (`llama_model_quantize`, the function behind
`llama-quantize`) makes each other quantization from the f16 file. Both come from the
llama-cpp-python release in uv.lock: its compiled library is the `gguf` extra, its vendored
converter is unpacked by hack/llama-cpp.sh (the trainer image carries both). Each tool runs in
a child process, so a crash in C++ is an error message here, not a lost trainer.

Before training, `check_convertible` runs the same converter on the base model's tokenizer
(`--vocab-only`): an architecture or a tokenizer that llama.cpp cannot convert fails the job
in seconds rather than after training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubetune_trainer.runtime.llama_cpp import GgufError as GgufError
from kubetune_trainer.runtime.llama_cpp import llama_cpp_dir
from kubetune_trainer.runtime.log import log

# Our names → llama.cpp's llama_ftype constants (llama-quantize's QUANT_OPTIONS).
FTYPES = {
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
    "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q5_k_s": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_k_s": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q3_k_l": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "q3_k_m": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "q3_k_s": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "iq4_nl": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
    "iq4_xs": "LLAMA_FTYPE_MOSTLY_IQ4_XS",
}
CONVERTER_TYPES = ("f16", "bf16")  # written by the converter itself, not quantized from f16


def _run(what: str, args: list[str]) -> float:
    """Run a llama.cpp tool in a child process: seconds taken, or GgufError with the end of
    its output."""
    start = time.monotonic()
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        # The converter imports its own gguf-py unless NO_LOCAL_GGUF is set: keep it unset.
        env={k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"},
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        tail = "\n  ".join(lines[-15:])
        raise GgufError(f"{what} failed (exit code {done.returncode}):\n  {tail}")
    return time.monotonic() - start


def convert(
    model_dir: Path, outfile: Path, outtype: str = "f16", vocab_only: bool = False
) -> float:
    converter = llama_cpp_dir() / "convert_hf_to_gguf.py"
    args = [sys.executable, str(converter), str(model_dir), "--outfile", str(outfile)]
    args += ["--outtype", outtype] + (["--vocab-only"] if vocab_only else [])
    return _run(f"llama.cpp's converter on {model_dir}", args)


def quantize(source: Path, target: Path, quantization: str) -> float:
    args = [
        sys.executable,
        "-m",
        "kubetune_trainer.export.gguf",
        str(source),
        str(target),
        quantization,
    ]
    return _run(f"llama.cpp's quantizer ({quantization})", args)


def check_convertible(model_dir: Path) -> None:
    """llama.cpp's converter on the model's config and tokenizer alone (seconds): refuses an
    architecture it has no converter for, or a BPE tokenizer it does not recognise."""
    with tempfile.TemporaryDirectory(prefix="kubetune-gguf-") as tmp:
        try:
            convert(model_dir, Path(tmp) / "vocab.gguf", vocab_only=True)
        except GgufError as e:
            raise GgufError(
                f"output.formats has gguf, but llama.cpp's converter cannot convert the base "
                f"model at {model_dir} (unsupported architecture or tokenizer; remove gguf "
                f"from output.formats, or convert another way): {e}"
            ) from None
    log(f"gguf: llama.cpp's converter accepts {model_dir} (architecture and tokenizer)")


def warn_dummy_prefix(model: Path) -> None:
    """A SentencePiece tokenizer's dummy-prefix space: transformers 5 (legacy=False) puts it at
    the start of the text only, llama.cpp (Llama 2's legacy rule) also after every special
    token, so `<|im_start|>user` becomes `<|im_start|> user` in llama.cpp. Said, not fixed."""
    config_file = model / "tokenizer_config.json"
    if not (model / "tokenizer.model").is_file() or not config_file.is_file():
        return
    if json.loads(config_file.read_text()).get("add_prefix_space") is not False:
        log(
            "gguf: note: this SentencePiece tokenizer adds a dummy-prefix space; llama.cpp also "
            "adds it after each special token (transformers 5 does not), so chat prompts "
            "tokenize slightly differently in llama.cpp than in training"
        )


def export_gguf(merged: Path, files: dict[str, str]) -> dict[str, dict[str, object]]:
    """Write each quantization's file (`files`: quantization → path); returns path and size of
    each. The intermediate f16 file is removed unless f16 was asked for."""
    warn_dummy_prefix(merged)
    folder = Path(next(iter(files.values()))).parent
    folder.mkdir(parents=True, exist_ok=True)
    f16 = Path(files.get("f16") or folder / ".intermediate-f16.gguf")
    written: dict[str, dict[str, object]] = {}
    quantized = [q for q in files if q not in CONVERTER_TYPES]
    if "f16" in files or quantized:
        seconds = convert(merged, f16, "f16")
        log(f"gguf: converted {merged} to f16 in {seconds:.1f}s")
    if "bf16" in files:
        seconds = convert(merged, Path(files["bf16"]), "bf16")
        log(f"gguf: converted {merged} to bf16 in {seconds:.1f}s")
    for quantization in quantized:
        seconds = quantize(f16, Path(files[quantization]), quantization)
        log(f"gguf: quantized to {quantization} in {seconds:.1f}s")
    if "f16" not in files:
        f16.unlink(missing_ok=True)
    for quantization, path in files.items():
        written[quantization] = {"path": path, "sizeBytes": Path(path).stat().st_size}
    return written


def _quantize_main(source: str, target: str, quantization: str) -> int:
    """Child process: llama.cpp's llama_model_quantize with llama-quantize's defaults."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quantization])
    params.nthread = len(os.sched_getaffinity(0))
    status = llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params))
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_quantize_main(*sys.argv[1:4]))
