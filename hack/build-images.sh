#!/usr/bin/env bash
# Builds the local cluster's container images without a registry or a
# container engine (hack/images, go-containerregistry), as docker-archive
# tarballs in $CLUSTER_DIR/images, and with --import loads them into the
# cluster's private containerd (namespace k8s.io).
#
#   hack/build-images.sh [--import] [pause] [busybox] [kfn] [node-20] [python-3.11]
#                                                     (default: all)
#
#   kfn.dev/pause:3.10       sandbox image, from hack/images/pause
#   kfn.dev/busybox:test     from Debian's busybox-static (/bin/busybox)
#   kfn.dev/kfn:dev          from $KFN_BIN (default bin/kfn); skipped with a
#                            notice when that binary does not exist
#   kfn.dev/node-20:dev      the runtimes of internal/runtimes/runtimes.json:
#   kfn.dev/python-3.11:dev  $NODE (default /usr/bin/node, the machine's
#                            nodejs 20) or $PYTHON (default /usr/bin/python3.11,
#                            Debian's python3.11) with the libraries they load,
#                            the wrapper and $KFN_BIN at /opt/kfn/bin/kfn;
#                            skipped with a notice without $KFN_BIN
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
    pause | busybox | kfn | node-20 | python-3.11) want+=("$a") ;;
    *) die "usage: $0 [--import] [pause] [busybox] [kfn] [node-20] [python-3.11]" ;;
  esac
done
named=${#want[@]} # images named on the command line must be built
((named)) || want=(pause busybox kfn node-20 python-3.11)
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
kfn_bin=${KFN_BIN:-$repo/bin/kfn}
if has kfn; then
  if [[ -x $kfn_bin ]]; then args+=(-kfn "$kfn_bin")
  else log "notice: $kfn_bin missing, skipping kfn.dev/kfn:dev (build it with: make bin/kfn)"; fi
fi
if has node-20 || has python-3.11; then
  if [[ -x $kfn_bin ]]; then
    args+=(-runtimes "$repo/internal/runtimes")
    [[ " ${args[*]} " == *" -kfn "* ]] || args+=(-kfn "$kfn_bin" -kfn-image=false)
    # An interpreter missing is fatal only for an image named on the command line.
    missing() { if ((named)); then die "$1"; else log "notice: $1; skipping"; fi; }
    if has node-20; then
      node=${NODE:-/usr/bin/node} # the machine image's nodejs 20
      if [[ -x $node ]]; then args+=(-node "$node"); else missing "no $node: install Node.js 20"; fi
    fi
    if has python-3.11; then
      python=${PYTHON:-/usr/bin/python3.11} # Debian's python3.11
      if [[ -x $python ]]; then args+=(-python "$python"); else missing "no $python: apt-get install python3.11"; fi
    fi
  else
    log "notice: $kfn_bin missing, skipping the runtime images (build it with: make bin/kfn)"
  fi
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
