"""Where llama.cpp's source tree is: its GGUF converter (export/gguf.py) and its reference
vocabularies (storage/tiny.py) come from the llama-cpp-python release uv.lock pins."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

LLAMA_CPP_ENV = "KUBETUNE_LLAMA_CPP"


class GgufError(RuntimeError):
    """GGUF export cannot run or failed; the message says why and what to do."""


def llama_cpp_dir(needed_by: str = "output.formats has gguf") -> Path:
    """The llama.cpp source folder with the converter and the reference vocabularies:
    $KUBETUNE_LLAMA_CPP, else where hack/llama-cpp.sh unpacks the installed llama-cpp-python's
    version. `needed_by` starts the error message (what in the job needs it)."""
    if os.environ.get(LLAMA_CPP_ENV):
        path = Path(os.environ[LLAMA_CPP_ENV])
    else:
        try:
            version = importlib.metadata.version("llama-cpp-python")
        except importlib.metadata.PackageNotFoundError:
            raise GgufError(
                f"{needed_by}, but llama-cpp-python is not installed: install "
                "kubetune's gguf extra (hack/venv.sh dev,operator,trainer,gguf) or use the "
                "trainer image"
            ) from None
        cache = Path(os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune")
        path = cache / "llama.cpp" / f"llama-cpp-python-{version}"
    if not (path / "convert_hf_to_gguf.py").is_file():
        raise GgufError(
            f"{needed_by}, but llama.cpp's converter is not at {path}: run "
            f"hack/llama-cpp.sh (it unpacks the pinned one), or set {LLAMA_CPP_ENV} to a "
            "llama.cpp source folder of the installed llama-cpp-python's version"
        )
    return path
