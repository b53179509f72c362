#!/usr/bin/env bash
# Download bench/gpu/wheels.txt's wheels for the device machine (Python 3.12, x86-64 manylinux)
# into .whl/, which .git/info/exclude keeps out of git and the device call carries.
#   PYTHON=python3 bench/gpu/wheels.sh   (any Python with pip; none of it is installed here)
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
rm -rf .whl
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
grep -v '^#' bench/gpu/wheels.txt | xargs "${PYTHON:-python3}" -m pip download -q --no-deps \
  --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl
du -sh .whl
