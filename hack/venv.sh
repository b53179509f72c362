#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment for a set of extras, outside the repo,
# keyed by the extras, pyproject.toml and the Python version, so reruns cost nothing.
#   hack/venv.sh dev,operator        -> prints the venv's path on stdout
# Dependencies come from PyPI through uv (installed with pip when missing).
set -euo pipefail
extras=${1:-dev,operator}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
python=${PYTHON:-python3}
log() { echo "[venv] $*" >&2; }

if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  "$python" -m pip install -q --disable-pip-version-check uv >&2
fi
uv=$(command -v uv || echo "$("$python" -m site --user-base)/bin/uv")

pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$( (echo "$extras $pyver"; cat "$root/pyproject.toml") | sha256sum | cut -c1-12)
venv=$cache/venvs/${extras//,/-}-py$pyver-$key
if [[ ! -f $venv/.complete ]]; then
  log "creating $venv (extras: $extras)"
  rm -rf "$venv"
  mkdir -p "$cache/venvs"
  "$uv" venv -q --python "$python" "$venv" >&2
  VIRTUAL_ENV=$venv "$uv" pip install -q --python "$venv/bin/python" -e "$root[$extras]" >&2
  touch "$venv/.complete"
else
  # The venv is shared by every clone: point its editable install at this checkout.
  VIRTUAL_ENV=$venv "$uv" pip install -q --python "$venv/bin/python" --no-deps -e "$root" >&2
fi
echo "$venv"
