#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the wrapper module that builds kube-apiserver,
# kube-controller-manager and kube-scheduler from k8s.io/kubernetes (and the kind node
# image's kubelet, kubeadm, kube-proxy and kubectl: hack/kind/node-image.sh).
#
# k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them to ./staging
# with replace lines, so `go install` refuses it. This module requires it and replaces
# every v0.0.0 staging module with its published v0.<minor>.<patch> tag. The list is
# derived from the real go.mod, not written by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../versions.env"
v=${KUBERNETES_VERSION}           # v1.35.4
staging=v0.${v#v1.}               # v0.35.4
gomod=$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
cd "$here"
{
  echo "module kubetune.io/hack/kubernetes"
  echo
  echo "go 1.25.0"
  echo
  echo "require k8s.io/kubernetes $v"
  echo
  echo "replace ("
  awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print "\t" $1 " => " $1 " '"$staging"'"}' "$gomod" | sort -u
  echo ")"
} > go.mod
rm -f go.sum
GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kube-controller-manager@$v" "k8s.io/kubernetes/cmd/kube-scheduler@$v" \
  "k8s.io/kubernetes/cmd/kubelet@$v" "k8s.io/kubernetes/cmd/kubeadm@$v" "k8s.io/kubernetes/cmd/kube-proxy@$v" "k8s.io/kubernetes/cmd/kubectl@$v"
