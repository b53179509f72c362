#!/usr/bin/env bash
# tests/e2e/kind/up.sh — a kind cluster that really runs kubetune, for the end-to-end test.
#
# Creates (or reuses) the kind cluster, installs the training-operator at the version the
# local control plane uses, builds the operator and trainer images from the Dockerfile, loads
# them into the nodes, and installs kubetune with Helm. Prints KUBECONFIG=<file> last.
#
#   bash tests/e2e/kind/up.sh                 # then: pytest tests/e2e -k kind
#   KUBETUNE_KIND_CLUSTER=name  KUBETUNE_KIND_KEEP_IMAGES=1 (skip the image build)
#
# Needs docker, kind, kubectl and helm on PATH (the README lists the versions we use).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
# shellcheck source=../../../hack/cluster/versions.env
source "$root/hack/cluster/versions.env"
name=${KUBETUNE_KIND_CLUSTER:-kubetune-e2e}
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
kubeconfig="$cache/kind-$name.yaml"
mkdir -p "$cache"

if ! kind get clusters 2>/dev/null | grep -qx "$name"; then
  kind create cluster --name "$name" --wait 180s >&2
fi
kind get kubeconfig --name "$name" >"$kubeconfig"
export KUBECONFIG="$kubeconfig"

# The PyTorchJob CRD from the vendored copy (manifests/third_party/), the rest of the
# training-operator's standalone overlay from its Go module (the module proxy, no git host).
kubectl apply --server-side --force-conflicts \
  -f "$root/manifests/third_party/training-operator/$TRAINING_OPERATOR_VERSION/kubeflow.org_pytorchjobs.yaml" >&2
module=$(cd "$root/hack/cluster/kubernetes" && go mod download -json \
  "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
kubectl apply --server-side --force-conflicts -k "$module/manifests/overlays/standalone" >&2
kubectl -n kubeflow rollout status deploy/training-operator --timeout=300s >&2

if [[ -z "${KUBETUNE_KIND_KEEP_IMAGES:-}" ]]; then
  docker build --target operator -t kubetune/operator:e2e "$root" >&2
  docker build --target trainer -t kubetune/trainer:e2e "$root" >&2
fi
kind load docker-image --name "$name" kubetune/operator:e2e kubetune/trainer:e2e >&2

helm upgrade --install kubetune "$root/charts/kubetune" \
  --namespace kubetune-system --create-namespace \
  --set image.repository=kubetune/operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set trainerImage=kubetune/trainer:e2e \
  --wait --timeout 5m >&2
kubectl wait --for=condition=Established crd/finetunejobs.kubetune.io --timeout=60s >&2
echo "KUBECONFIG=$kubeconfig"
