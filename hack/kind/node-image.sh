#!/usr/bin/env bash
# The kind node image, built offline and cached by content key:
#   hack/kind/node-image.sh        -> prints KIND_NODE_IMAGE=kubetune-kind/node:<version>-<key>
# What kind's own `kind build node-image` puts in kindest/node, made from what this machine
# reaches (docs/kind.md):
#   base      hack/kind/Dockerfile `base`: kind's images/base files (from the kind Go module)
#             on the Debian-made base (hack/base-images), systemd, containerd, runc and the CNI
#             plugins from Debian packages
#   node      kubelet, kubeadm, kubectl (hack/cluster/build-binaries.sh kubernetes-node), crictl,
#             /kind/version, /kind/manifests/default-{cni,storage}.yaml
#   images    imported into the node's containerd, as kind does (ctr import --no-unpack, pinned):
#             registry.k8s.io/kube-{apiserver,controller-manager,scheduler,proxy}:<version>,
#             etcd, coredns, pause — each a minimal image around a binary built from its Go module
#             (pause from k8s.io/kubernetes' C source; kube-proxy on Debian with iptables)
# The key hashes this folder, versions.env, the binaries and the base image's id: an unchanged
# input finds its tag and returns in a second; older tags of the node image are removed.
# Needs root-started Docker (eval "$(hack/docker)"), Go and gcc. Progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/hack/cluster/versions.env"
say() { echo "[kind-node-image] $*" >&2; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

eval "$(bash "$root/hack/cluster/build-binaries.sh" kubernetes kubernetes-node etcd pause coredns crictl kind | sed 's/^/export /')"
eval "$(bash "$root/hack/base-images" | sed 's/^/export /')"
kind_src=$(cd "$root/hack/cluster/kubernetes" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" \
  | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
base_id=$(docker image inspect -f '{{.Id}}' "$TRAINER_BASE_IMAGE")
key=$( { cat "$root/hack/cluster/versions.env"; echo "$base_id";
         find "$here" -type f | sort | xargs sha256sum | sed "s|$here/||";
         sha256sum "$KUBERNETES_BIN"/* "$KUBERNETES_NODE_BIN"/* "$ETCD_BIN"/etcd "$PAUSE_BIN"/pause \
           "$COREDNS_BIN"/coredns "$CRICTL_BIN"/crictl | awk '{print $1}'; } | sha256sum | cut -c1-12)
image=kubetune-kind/node:$KUBERNETES_VERSION-$key
if exists "$image"; then say "$image is current"; echo "KIND_NODE_IMAGE=$image"; exit 0; fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/kubetune-kind.XXXXXX")
cid=
cleanup() { [[ -z $cid ]] || docker rm -f -v "$cid" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

# The component images, each a folder with its binary, imported as the tag kubeadm uses.
etcd_tag=registry.k8s.io/etcd:${ETCD_VERSION#v}-0
images=()
component() {  # TAG ENTRYPOINT-JSON FILE...
  local tag=$1 entry=$2; shift 2
  local dir=$work/img-$((${#images[@]}))
  mkdir -p "$dir/usr/local/bin"
  cp "$@" "$dir/usr/local/bin/"
  tar -C "$dir" --owner=0 --group=0 -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    ${entry:+-c "ENTRYPOINT $entry"} - "$tag" >/dev/null
  images+=("$tag")
}
say "component images"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  component "registry.k8s.io/$cmd:$KUBERNETES_VERSION" "" "$KUBERNETES_BIN/$cmd"
done
component "$etcd_tag" "" "$ETCD_BIN/etcd"
component "registry.k8s.io/pause:$PAUSE_VERSION" '["/usr/local/bin/pause"]' "$PAUSE_BIN/pause"
component "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" '["/usr/local/bin/coredns"]' "$COREDNS_BIN/coredns"
# kube-proxy programs iptables: Debian's iptables and conntrack beside the binary.
mkdir -p "$work/proxy" && cp "$KUBERNETES_NODE_BIN/kube-proxy" "$work/proxy/"
printf '%s\n' "FROM $TRAINER_BASE_IMAGE" \
  "RUN apt-get update && apt-get install -y --no-install-recommends iptables conntrack && rm -rf /var/lib/apt/lists/*" \
  "COPY kube-proxy /usr/local/bin/kube-proxy" >"$work/proxy/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" "$work/proxy" >&2
images+=("registry.k8s.io/kube-proxy:$KUBERNETES_VERSION")
docker save "${images[@]}" >"$work/images.tar"

say "node image: base and binaries"
ctx=$work/ctx
mkdir -p "$ctx/bin" "$ctx/manifests"
cp -r "$kind_src/images/base/files" "$ctx/files" && chmod -R u+w "$ctx/files"
cp "$here/Dockerfile" "$here/runc-wrapper" "$here/10-kubetune.conflist" "$ctx/"
sed -i "s/PAUSE_VERSION/$PAUSE_VERSION/" "$ctx/Dockerfile"
cp "$here"/manifests/*.yaml "$ctx/manifests/"
cp "$KUBERNETES_NODE_BIN"/{kubelet,kubeadm,kubectl} "$CRICTL_BIN/crictl" "$ctx/bin/"
echo "$KUBERNETES_VERSION" >"$ctx/version"
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$TRAINER_BASE_IMAGE" --target node \
  -t "$image-unloaded" "$ctx" >&2

say "node image: importing ${#images[@]} images into its containerd"
cid=$(docker run -d --privileged --entrypoint sleep "$image-unloaded" infinity)
docker exec "$cid" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &
  for i in $(seq 30); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done
  cat /tmp/containerd.log; exit 1' >&2
docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests - <"$work/images.tar" >&2
docker exec "$cid" ctr --namespace=k8s.io images list -q >&2
# (`sleep` as PID 1 reaps nobody: wait until no containerd is left but a zombie)
docker exec "$cid" bash -c 'pkill -x containerd
  for i in $(seq 100); do ps -C containerd -o stat= | grep -qv Z || break; sleep 0.2; done
  rm -rf /run/containerd /tmp/containerd.log'
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'CMD []' \
  "$cid" "$image" >/dev/null
docker rm -f -v "$cid" >/dev/null && cid=
docker rmi "$image-unloaded" "${images[@]}" >/dev/null
# One node image per checkout's inputs: older tags go.
docker images --format '{{.Repository}}:{{.Tag}}' kubetune-kind/node | grep -vx "$image" | xargs -r docker rmi >/dev/null || true
say "built $image"
echo "KIND_NODE_IMAGE=$image"
