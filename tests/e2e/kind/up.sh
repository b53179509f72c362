#!/usr/bin/env bash
# tests/e2e/kind/up.sh — a kind cluster that really runs kubetune, offline (docs/kind.md).
#
# Creates (or reuses) a single-node kind cluster from the node image hack/kind/node-image.sh
# builds, installs the training-operator and Kueue from their Go modules' manifests (their
# images made from the binaries build-binaries.sh builds), builds the operator and trainer images
# (hack/images.py), loads them into the node, makes hostPath PersistentVolumes, and installs
# kubetune with Helm, and starts an S3 server (SeaweedFS) in the cluster. Prints
# KUBECONFIG=<file>, TRAINER_IMAGE=<tag> and the S3 server's KIND_S3_* last.
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

eval "$(bash "$root/hack/cluster/build-binaries.sh" clients kind training-operator kueue | sed 's/^/export /')"
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

# Kueue: its Go module's default install (config/default, rendered with the kustomize built
# into kubectl once per version), with the image made from the binary build-binaries.sh builds
# and only the PyTorchJob integration (hack/cluster/kueue.py kind). It makes its own webhook
# and visibility-server certificates; the visibility API (queue positions) is served.
say "Kueue $KUEUE_VERSION"
kueue_image=kubetune-kind/kueue:$KUEUE_VERSION
if ! docker image inspect "$kueue_image" >/dev/null 2>&1; then
  scratch=$(mktemp -d) && mkdir -p "$scratch/root"
  cp "$KUEUE_BIN/kueue" "$scratch/root/manager"
  tar -C "$scratch/root" --owner=0 --group=0 -c . \
    | docker import --change 'USER 65532:65532' --change 'ENTRYPOINT ["/manager"]' - "$kueue_image" >/dev/null
  rm -rf "$scratch"
fi
load "$kueue_image"
kueue_rendered=$KUEUE_BIN/kustomize-default.yaml
if [[ ! -s $kueue_rendered ]]; then
  kueue_module=$(cd "$root/hack/cluster/kubernetes" && go mod download -json \
    "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  kubectl kustomize "$kueue_module/config/default" >"$kueue_rendered.tmp"
  mv "$kueue_rendered.tmp" "$kueue_rendered"
fi
python3 "$root/hack/cluster/kueue.py" kind "$kueue_rendered" "docker.io/$kueue_image" \
  | kubectl apply --server-side --force-conflicts -f - >/dev/null
kubectl -n kueue-system rollout status deploy/kueue-controller-manager --timeout=300s >&2
# The visibility API's APIServices go in once the node routes its Service to the manager: the
# API server keeps the connection its aggregator opens first, and one opened before kube-proxy
# routes the Service IP left the node (here, to a TLS-intercepting proxy that answers 404).
visibility_ip=$(kubectl -n kueue-system get service kueue-visibility-server -o jsonpath='{.spec.clusterIP}')
if ! timeout 120 bash -c "until docker exec '$node' curl -sfk -o /dev/null 'https://$visibility_ip/healthz'; do sleep 1; done"; then
  say "Kueue's visibility server does not answer at its Service ($visibility_ip)"; exit 1
fi
python3 "$root/hack/cluster/kueue.py" kind-apiservices "$kueue_rendered" \
  | kubectl apply --server-side --force-conflicts -f - >/dev/null
kubectl wait --for=condition=Available apiservice/v1beta2.visibility.kueue.x-k8s.io --timeout=120s >&2

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

# The S3 server (docs/object-storage.md): SeaweedFS in one pod, its image made from the binary
# build-binaries.sh builds, its identities those of hack/cluster/s3_server.py, with keys of its
# own. Pods reach it as seaweedfs.kubetune-s3.svc; the tests from here, at the node's NodePort.
say "S3 server (SeaweedFS)"
eval "$(bash "$root/hack/cluster/build-binaries.sh" seaweedfs | sed 's/^/export /')"
s3_image=kubetune-kind/seaweedfs:${SEAWEEDFS_VERSION##*-}
if ! docker image inspect "$s3_image" >/dev/null 2>&1; then
  scratch=$(mktemp -d) && mkdir -p "$scratch/root/tmp" "$scratch/root/data"
  chmod 1777 "$scratch/root/tmp"
  cp "$SEAWEEDFS_BIN/weed" "$scratch/root/weed"
  tar -C "$scratch/root" --owner=0 --group=0 -c . | docker import - "$s3_image" >/dev/null
  rm -rf "$scratch"
fi
load "$s3_image"
s3_state=$cache/kind-$name-state
s3_config=$(python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
import s3_server
from pathlib import Path
print(json.dumps(s3_server.s3_config(s3_server.credentials(Path(sys.argv[2])))))
' "$root/hack/cluster" "$s3_state")
kubectl create namespace kubetune-s3 --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n kubetune-s3 create secret generic seaweedfs-config --from-literal=s3.json="$s3_config" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: seaweedfs, namespace: kubetune-s3}
spec:
  selector: {matchLabels: {app: seaweedfs}}
  template:
    metadata: {labels: {app: seaweedfs}}
    spec:
      containers:
        - name: weed
          image: docker.io/$s3_image
          imagePullPolicy: Never
          command: [/weed, server, -ip=127.0.0.1, -ip.bind=0.0.0.0, -dir=/data,
                    -master.volumeSizeLimitMB=64, -master.telemetry=false, -volume.max=0,
                    -filer, -s3, -s3.port=8333, -s3.config=/config/s3.json,
                    -s3.port.iceberg=0, -s3.port.lance=0]
          ports: [{containerPort: 8333}]
          readinessProbe: {tcpSocket: {port: 8333}, periodSeconds: 2}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: config, mountPath: /config, readOnly: true}
      volumes:
        - {name: data, emptyDir: {}}
        - {name: config, secret: {secretName: seaweedfs-config}}
---
apiVersion: v1
kind: Service
metadata: {name: seaweedfs, namespace: kubetune-s3}
spec:
  type: NodePort
  selector: {app: seaweedfs}
  ports: [{port: 8333, targetPort: 8333, nodePort: 30833}]
YAML
kubectl -n kubetune-s3 rollout status deploy/seaweedfs --timeout=180s >&2
node_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$node")

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
echo "KIND_S3_ENDPOINT=http://$node_ip:30833"
echo "KIND_S3_JOB_ENDPOINT=http://seaweedfs.kubetune-s3.svc:8333"
echo "KIND_S3_CREDENTIALS=$s3_state/s3/credentials.json"
