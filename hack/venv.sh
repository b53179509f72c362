#!/usr/bin/env bash
# Brings this checkout's own virtual environment (.venv) to the locked versions (uv.lock; a lock
# that no longer matches pyproject.toml is refused: run `uv lock`) for a
# set of extras, and prints its path:
#   hack/venv.sh dev,operator,trainer        -> /path/to/checkout/.venv
# The environment belongs to this checkout alone (its editable install is this checkout); uv's
# cache makes re-creating it cheap. By default packages that other extras installed stay (so
# `make demo` or `hack/local-cluster` never strip the test tools out from under a running test);
# KUBETUNE_SYNC=exact makes the environment exactly the lock's for these extras (`make test`).
# KUBETUNE_VENV puts the environment elsewhere (the CI cold-path check uses a throw-away one).
set -euo pipefail
extras=${1:-dev,operator}
root=$(cd "$(dirname "$0")/.." && pwd)
uv=$("$root/hack/uv.sh")
args=(sync --locked --quiet --python "${PYTHON:-python3}")
IFS=, read -ra names <<<"$extras"
for name in "${names[@]}"; do args+=(--extra "$name"); done
[[ ${KUBETUNE_SYNC:-inexact} == exact ]] || args+=(--inexact)
venv=${KUBETUNE_VENV:-$root/.venv}
echo "[venv] $venv: extras $extras from uv.lock" >&2
# The gguf extra builds llama-cpp-python (llama.cpp's C++) from its source distribution the first
# time (uv caches the wheel by the sdist's hash): portable CPU code (no -march=native, so a cached
# wheel runs on any x86-64 machine), without the multimodal library, two compile jobs at low priority.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
# No interpreter downloads: uv uses the Python it is given (releases are not on the index).
(cd "$root" && UV_PROJECT_ENVIRONMENT=$venv UV_PYTHON_DOWNLOADS=never nice -n 10 "$uv" "${args[@]}") >&2
echo "$venv"
