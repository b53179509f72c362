#!/usr/bin/env bash
# Runs on the device machine, from the repository's root, with .whl carried (wheels.sh):
# installs the wheels beside the image's packages, prints the versions in use, runs the bench.
# Extra arguments go to run.py; BUDGET_S (default 420) stops starting runs after that many s.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 # nothing outside the machine can be reached
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import importlib.metadata as m
for n in ("torch","transformers","peft","accelerate","trl","bitsandbytes","datasets","pyarrow"):
    print(n, m.version(n))'
out=${OUT:-/tmp/kubetune-gpu-bench}
mkdir -p "$out"
python3 bench/gpu/run.py --out "$out" --budget-s "${BUDGET_S:-420}" "$@" 2>&1 | tee "$out/log.txt"
