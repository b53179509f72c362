#!/usr/bin/env bash
# tests/e2e/kind/up.sh — a kind cluster that really runs kubetune, offline (docs/kind.md).
#
# Creates (or reuses) a single-node kind cluster from the node image hack/kind/node-image.sh
# builds, installs the training-operator from its Go module's manifests (its image made from
# the binary build-binaries.sh builds), builds the operator and trainer images
# (hack/images.py), loads them into the node, makes hostPath PersistentVolumes, and installs
# kubetune with Helm. Prints KUBECONFIG=<file> and TRAINER_IMAGE=<tag> last.
#
#   bash tests/e2e/kind/up.sh        # then: pytest tests/e2e -m kind
#   bash tests/e2e/kind/up.sh down   # delete the cluster
#   KUBETUNE_KIND_CLUSTER=name (default kubetune-e2e)
#
# Everything it needs is built here and cached under ${KUBETUNE_CACHE:-~/.cache/kubetune}:
# kind, kubectl and helm (hack/cluster/build-binaries.sh), the Docker engine (hack/docker).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
# shellcheck source=../../../hack/cluster/versions.env
source "$root/hack/cluster/versions.env"
name=${KUBETUNE_KIND_CLUSTER:-kubetune-e2e}
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
kubeconfig="$cache/kind-$name.yaml"
node=$name-control-plane
pvs=${KUBETUNE_KIND_PVS:-30}
say() { echo "[kind-up] $(date +%T) $*" >&2; }
mkdir -p "$cache"

eval "$(bash "$root/hack/cluster/build-binaries.sh" clients kind training-operator | sed 's/^/export /')"
export PATH=$KIND_BIN:$CLIENTS_BIN:$PATH
eval "$(bash "$root/hack/docker")"

if [[ ${1:-} == down ]]; then
  kind delete cluster --name "$name" >&2; rm -f "$kubeconfig"; exit 0
fi

eval "$(bash "$root/hack/kind/node-image.sh" | sed 's/^/export /')"
if kind get clusters 2>/dev/null | grep -qx "$name" \
   && [[ $(docker inspect -f '{{.Config.Image}}' "$node" 2>/dev/null) != "$KIND_NODE_IMAGE" ]]; then
  say "the cluster runs another node image: recreating it"
  kind delete cluster --name "$name" >&2
fi
if ! kind get clusters 2>/dev/null | grep -qx "$name"; then
  say "creating cluster $name from $KIND_NODE_IMAGE"
  # cgroup v1 hosts (this project's CI): Kubernetes 1.35's kubelet refuses them unless told
  # (KEP-5573); kind skips kubeadm's preflight, which would refuse them too. etcd is the
  # version built here, tagged as such.
  cat >"$cache/kind-$name-config.yaml" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: "${ETCD_VERSION#v}-0"
YAML
  kind create cluster --name "$name" --image "$KIND_NODE_IMAGE" \
    --config "$cache/kind-$name-config.yaml" --wait 300s >&2
fi
kind get kubeconfig --name "$name" >"$kubeconfig"
export KUBECONFIG="$kubeconfig"

# Images go into the node as `kind load docker-image` does it (`ctr images import` of
# `docker save`), streamed instead of through kind's temporary tar, and then the imported layer
# tars leave containerd's content store, as its CRI does after a pull with
# discard_unpacked_layers: containers start from the unpacked snapshots, which stay. The
# trainer image is GBs; those two extra copies are what ran a CI machine out of disk. An image
# whose id the node already has is skipped, as kind skips it.
load() {
  local image id manifest
  for image in "$@"; do
    id=$(docker image inspect -f '{{.Id}}' "$image")
    if [[ $(docker exec "$node" crictl inspecti -o go-template --template '{{.status.id}}' \
            "docker.io/$image" 2>/dev/null) == "$id" ]]; then
      continue
    fi
    say "loading $image into $node ($(df -h --output=avail "$cache" | tail -n1 | tr -d ' ') free here)"
    if ! docker save "$image" | docker exec -i --privileged "$node" \
         ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs - \
         2>&1 | sed 's/^/[kind-load] /' >&2; then
      say "loading $image failed; the disk where Docker keeps the node:"
      df -h "$cache" >&2
      return 1
    fi
    manifest=$(docker exec "$node" ctr --namespace=k8s.io images ls "name==docker.io/$image" \
      | awk 'NR == 2 {print $3}')
    # shellcheck disable=SC2046  # one argument per layer digest
    docker exec "$node" ctr --namespace=k8s.io content rm $(docker exec "$node" \
      ctr --namespace=k8s.io content get "$manifest" \
      | python3 -c 'import json, sys; print(*(l["digest"] for l in json.load(sys.stdin)["layers"]))')
  done
}

# The training-operator: its Go module's standalone overlay (kustomize, built into kubectl),
# the PyTorchJob CRD from the vendored copy, the image made from the binary built here.
say "training-operator $TRAINING_OPERATOR_VERSION"
to_image=kubetune-kind/training-operator:$TRAINING_OPERATOR_VERSION
if ! docker image inspect "$to_image" >/dev/null 2>&1; then
  scratch=$(mktemp -d) && mkdir -p "$scratch/root"
  cp "$TRAINING_OPERATOR_BIN/training-operator.v1" "$scratch/root/manager"
  tar -C "$scratch/root" --owner=0 --group=0 -c . | docker import - "$to_image" >/dev/null
  rm -rf "$scratch"
fi
# The worker's init container (`init-pytorch`: sh, seq, nslookup until the master's Service
# resolves) defaults to alpine:3.10 from a registry; here it is Debian's bind9-dnsutils.
eval "$(bash "$root/hack/base-images" | sed 's/^/export /')"
init_image=kubetune-kind/pytorch-init:bookworm-$(docker image inspect -f '{{.Id}}' "$TRAINER_BASE_IMAGE" | cut -c8-19)
if ! docker image inspect "$init_image" >/dev/null 2>&1; then
  printf '%s\n' "FROM $TRAINER_BASE_IMAGE" \
    "RUN apt-get update && apt-get install -y --no-install-recommends bind9-dnsutils && rm -rf /var/lib/apt/lists/*" \
    | DOCKER_BUILDKIT=0 docker build -q -t "$init_image" - >&2
fi
load "$to_image" "$init_image"
kubectl apply --server-side --force-conflicts \
  -f "$root/manifests/third_party/training-operator/$TRAINING_OPERATOR_VERSION/kubeflow.org_pytorchjobs.yaml" >&2
module=$(cd "$root/hack/cluster/kubernetes" && go mod download -json \
  "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
kubectl kustomize "$module/manifests/overlays/standalone" \
  | sed "s|image: ghcr.io/kubeflow/training-v1/training-operator:.*|image: docker.io/$to_image|" \
  | kubectl apply --server-side --force-conflicts -f - >&2
kubectl -n kubeflow patch deployment training-operator --type json -p "[{\"op\": \"add\",
  \"path\": \"/spec/template/spec/containers/0/args\",
  \"value\": [\"--pytorch-init-container-image=docker.io/$init_image\"]}]" >&2

# Volumes: hostPath PersistentVolumes on the node (ReadWriteMany and ReadWriteOnce: one node),
# world-writable (the trainer runs as uid 1000); Released ones are emptied and made Available.
say "persistent volumes"
dirs=()
for i in $(seq 0 $((pvs - 1))); do dirs+=("/var/local/kubetune-pv/pv-$i"); done
docker exec "$node" bash -c 'mkdir -p "$@" && chmod 0777 "$@"' _ "${dirs[@]}"
for i in $(seq 0 $((pvs - 1))); do
  cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: kubetune-pv-$i, labels: {kubetune.io/kind-pv: "true"}}
spec:
  capacity: {storage: 10Ti}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath: {path: /var/local/kubetune-pv/pv-$i, type: Directory}
YAML
done | kubectl apply -f - >/dev/null
for pv in $(kubectl get pv -l kubetune.io/kind-pv=true \
              -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}'); do
  dir=/var/local/kubetune-pv/${pv#kubetune-}
  docker exec "$node" bash -c "rm -rf '$dir' && mkdir -p '$dir' && chmod 0777 '$dir'"
  kubectl patch pv "$pv" --type json -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
done

say "kubetune images"
operator_image=$(python3 "$root/hack/images.py" operator)
trainer_image=$(python3 "$root/hack/images.py" trainer)
load "$operator_image" "$trainer_image"

say "helm install"
helm upgrade --install kubetune "$root/charts/kubetune" \
  --namespace kubetune-system --create-namespace \
  --set image.repository="${operator_image%:*}" --set image.tag="${operator_image##*:}" \
  --set image.pullPolicy=Never --set trainerImage="$trainer_image" \
  --wait --timeout 5m >&2
kubectl -n kubeflow rollout status deploy/training-operator --timeout=300s >&2
kubectl wait --for=condition=Established crd/finetunejobs.kubetune.io --timeout=60s >&2
say "ready"
echo "KUBECONFIG=$kubeconfig"
echo "TRAINER_IMAGE=$trainer_image"
