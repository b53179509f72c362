#!/usr/bin/env bash
# Runs the trainer tests with every dependency at the floor pyproject.toml declares
# (uv --resolution lowest-direct), in a throw-away environment: a floor that is not true fails
# here. Slow (a second torch), so not part of `make test`; run it after changing a floor.
#   hack/test-floors.sh [pytest args]      (default: tests/trainer)
#   KUBETUNE_FLOORS_OVERRIDE="bitsandbytes==0.48.0" hack/test-floors.sh …   (to bisect a floor)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
uv=$("$root/hack/uv.sh")
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kubetune-floors.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export UV_PYTHON_DOWNLOADS=never
echo "${KUBETUNE_FLOORS_OVERRIDE:-}" | tr ' ' '\n' >"$scratch/override.txt"
"$uv" pip compile --quiet --resolution lowest-direct --extra dev --extra trainer \
  --override "$scratch/override.txt" \
  --python "${PYTHON:-python3}" "$root/pyproject.toml" -o "$scratch/floors.txt"
echo "[floors] the direct dependencies (base and trainer extra) at their floors:" >&2
# The names come from pyproject.toml (the trainer extra and the base dependencies).
direct=$("${PYTHON:-python3}" -c '
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
names = [re.split(r"[<>=!~;\[ ]", r)[0] for r in project["dependencies"] + project["optional-dependencies"]["trainer"]]
print("|".join(sorted(set(names))))' "$root/pyproject.toml")
grep -iE "^($direct)==" "$scratch/floors.txt" | sed 's/^/  /' >&2
"$uv" venv --quiet --python "${PYTHON:-python3}" "$scratch/venv"
"$uv" pip sync --quiet --python "$scratch/venv/bin/python" "$scratch/floors.txt"
"$uv" pip install --quiet --no-deps --python "$scratch/venv/bin/python" -e "$root"
cd "$root"
"$scratch/venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests/trainer}"
