#!/usr/bin/env bash
# Prints the path of the uv this project pins, fetching it once into the cache if needed:
#   uv=$(hack/uv.sh)
# Needs only python3 ≥ 3.11 (no pip, no venv module): hack/bootstrap-uv.py does the download.
set -euo pipefail
UV_VERSION=0.13.9
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1 \
   || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "[uv] kubetune needs Python ≥ 3.11 as '$python' (set PYTHON=/path/to/python3.11+)" >&2
  exit 1
fi
if [[ "$(uv --version 2>/dev/null)" == "uv $UV_VERSION"* ]]; then
  command -v uv; exit 0
fi
dir=$cache/bin/uv-$UV_VERSION
if [[ ! -x $dir/uv ]]; then
  echo "[uv] fetching uv $UV_VERSION into $dir" >&2
  "$python" "$root/hack/bootstrap-uv.py" "$UV_VERSION" "$dir"
fi
echo "$dir/uv"
