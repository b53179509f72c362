#!/usr/bin/env bash
# Copies the PyTorchJob CRD of the training-operator version in hack/cluster/versions.env out of
# its Go module (fetched from the Go module proxy) into manifests/third_party/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/cluster/versions.env"
command -v go >/dev/null || { echo "refresh-pytorchjob-crd: needs Go (https://go.dev/dl/)" >&2; exit 1; }
module=$(cd "$root/hack/cluster/kubernetes" && go mod download -json \
  "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
dest=$root/manifests/third_party/training-operator/$TRAINING_OPERATOR_VERSION
mkdir -p "$dest"
cp "$module/manifests/base/crds/kubeflow.org_pytorchjobs.yaml" "$dest/"
chmod 644 "$dest/kubeflow.org_pytorchjobs.yaml"
echo "$dest/kubeflow.org_pytorchjobs.yaml"
