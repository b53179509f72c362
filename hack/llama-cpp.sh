#!/usr/bin/env bash
# Unpacks llama.cpp's converter (convert_hf_to_gguf.py, its conversion/ package, gguf-py) and its
# reference vocabularies and chat templates (models/ggml-vocab-*.gguf with their .inp/.out token ids,
# models/templates/) from the llama-cpp-python source distribution pinned in uv.lock, once per
# version and sdist hash, and prints the folder:
#   hack/llama-cpp.sh            -> ~/.cache/kubetune/llama.cpp/llama-cpp-python-0.3.36
# GGUF export (output.formats: [gguf]) runs that converter; the quantizer and the test's inference
# are the C++ library of the same sdist, which uv builds into the environment (the gguf extra).
# The trainer finds the folder at this path (KUBETUNE_CACHE respected) or at $KUBETUNE_LLAMA_CPP.
# The sdist's SHA-256 must equal uv.lock's, so converter and library are one llama.cpp version.
# The tests load those vocabularies as Hugging Face tokenizers (tests/support/vocabularies.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
python=${PYTHON:-python3}
read -r version sha256 url < <("$python" - "$root/uv.lock" <<'EOF'
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
pkg = next(p for p in lock["package"] if p["name"] == "llama-cpp-python")
print(pkg["version"], pkg["sdist"]["hash"].removeprefix("sha256:"), pkg["sdist"]["url"])
EOF
)
dir=$cache/llama.cpp/llama-cpp-python-$version
if [[ -f $dir/convert_hf_to_gguf.py && -d $dir/models/templates && -f $dir/.sha256 &&
  $(<"$dir/.sha256") == "$sha256" ]]; then
  echo "$dir"; exit 0
fi
echo "[llama-cpp] unpacking llama.cpp's converter, vocabularies and templates from llama-cpp-python $version into $dir" >&2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kubetune-llama-cpp.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# The sdist from the URL uv.lock records (what `uv sync` fetches), with Python's standard library
# alone: a pip download would prepare the package's metadata, i.e. build its build backend.
"$python" - "$url" "$scratch/llama_cpp_python-$version.tar.gz" <<'EOF' >&2
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=600) as r, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(r, out, 1 << 20)
EOF
sdist=$scratch/llama_cpp_python-$version.tar.gz
echo "$sha256  $sdist" | sha256sum -c --quiet -
top=llama_cpp_python-$version/vendor/llama.cpp
tar -xzf "$sdist" -C "$scratch" --wildcards \
  "$top/convert_hf_to_gguf.py" "$top/conversion" "$top/gguf-py" "$top/LICENSE" \
  "$top/tools/quantize/quantize.cpp" "$top/models/ggml-vocab-*" "$top/models/templates"
echo "$sha256" >"$scratch/$top/.sha256"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && mv "$scratch/$top" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$dir"
