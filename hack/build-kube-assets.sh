#!/usr/bin/env bash
# Builds the Kubernetes components kfn tests against, from the Go module proxy
# (no release binaries can be downloaded here): one combined binary for
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
# kube-proxy, plus etcd. The result is cached outside the clone, keyed by
# version, so later runs on the same machine skip the build.
#
# Prints the asset folder (usable as KUBEBUILDER_ASSETS) on stdout.
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
here=$(cd "$(dirname "$0")" && pwd)
cache=${KFN_CACHE:-$HOME/.cache/kfn}
bin=$cache/kube-$KUBE_VERSION-etcd-$ETCD_VERSION/bin

build() { CGO_ENABLED=0 go build -trimpath "$@"; }

if [[ ! -x $bin/kube ]]; then
  mkdir -p "$bin"
  start=$SECONDS
  echo "building Kubernetes $KUBE_VERSION components (cold: ~15 min on 2 cores)" >&2
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here/kube" && build -ldflags "$ldflags" -o "$bin/kube.tmp" .)
  mv "$bin/kube.tmp" "$bin/kube"
  echo "built kube in $((SECONDS - start)) s" >&2
fi
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  ln -sf kube "$bin/$c"
done

if [[ ! -x $bin/etcd ]]; then
  start=$SECONDS
  echo "building etcd $ETCD_VERSION" >&2
  (cd "$here/etcd" && build -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
  echo "built etcd in $((SECONDS - start)) s" >&2
fi

# envtest looks for kubectl beside the other assets.
if command -v kubectl >/dev/null; then ln -sf "$(command -v kubectl)" "$bin/kubectl"; fi
echo "$bin"
