#!/usr/bin/env bash
# Builds the local cluster's container images without a registry or a
# container engine (hack/images, go-containerregistry), as docker-archive
# tarballs in $CLUSTER_DIR/images, and with --import loads them into the
# cluster's private containerd (namespace k8s.io).
#
#   hack/build-images.sh [--import] [pause] [busybox] [kfn]    (default: all)
#
#   kfn.dev/pause:3.10    sandbox image, from hack/images/pause
#   kfn.dev/busybox:test  from Debian's busybox-static (/bin/busybox)
#   kfn.dev/kfn:dev       from $KFN_BIN (default bin/kfn); skipped with a
#                         notice when that binary does not exist
#
# Builds are reproducible: an unchanged input keeps its tarball and digest,
# and an image is imported again only when its digest differs from the one
# last imported into this containerd.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "$0")/cluster/lib.sh"
src=$repo/hack/images

import=false
want=()
for a in "$@"; do
  case $a in
    --import) import=true ;;
    pause | busybox | kfn) want+=("$a") ;;
    *) die "usage: $0 [--import] [pause] [busybox] [kfn]" ;;
  esac
done
((${#want[@]})) || want=(pause busybox kfn)
has() { [[ " ${want[*]} " == *" $1 "* ]]; }

mkdir -p "$IMAGES/bin"
build() { (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$@"); }
build "$IMAGES/bin/images" .
args=(-out "$IMAGES")
if has pause; then
  build "$IMAGES/bin/pause" ./pause
  args+=(-pause "$IMAGES/bin/pause")
fi
if has busybox; then
  bb=${BUSYBOX:-/bin/busybox} # Debian's busybox-static installs it here
  [[ -x $bb ]] || die "no $bb: apt-get install busybox-static"
  args+=(-busybox "$bb")
fi
if has kfn; then
  kfn_bin=${KFN_BIN:-$repo/bin/kfn}
  if [[ -x $kfn_bin ]]; then args+=(-kfn "$kfn_bin")
  else log "notice: $kfn_bin missing, skipping kfn.dev/kfn:dev (build it with: make bin/kfn)"; fi
fi
built=$("$IMAGES/bin/images" "${args[@]}")
echo "$built" >&2

$import || exit 0
running containerd || die "containerd of the local cluster is not running (make cluster-up)"
mkdir -p "$CTRD/imported"
while read -r ref digest tarball; do
  [[ -n $ref ]] || continue
  mark=$CTRD/imported/$(basename "$tarball" .tar)
  if [[ $(cat "$mark" 2>/dev/null) == "$digest" ]] && ctr_ images ls -q "name==$ref" | grep -q .; then
    continue
  fi
  ctr_ images import "$tarball" >/dev/null
  echo "$digest" >"$mark"
  log "imported $ref ($digest)"
done <<<"$built"
