#!/usr/bin/env bash
# Restarts the local cluster's etcd and/or kube-apiserver in place, as an
# upgrade or a crash of the control plane would, for the failover tests:
#
#   hack/cluster-restart.sh kube-apiserver [etcd]
#
# Stops the named components (the API server first: SIGTERM, SIGKILL after
# 10 s), starts them again with cluster-up's own command lines, and waits,
# bounded, until each answers. Everything else (the kubelet, the pods, the
# controller-manager) keeps running and has to reconnect on its own.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "$0")/cluster/lib.sh"
# shellcheck source=hack/cluster/control-plane.sh
source "$(dirname "$0")/cluster/control-plane.sh"
[[ $EUID -eq 0 ]] || die "run as root (the cluster runs as root)"
(($#)) || die "usage: $0 kube-apiserver|etcd..."
apiserver=false etcd=false
for c in "$@"; do
  case $c in
    kube-apiserver) apiserver=true ;;
    etcd) etcd=true ;;
    *) die "cannot restart $c: only etcd and kube-apiserver (restart the rest with make cluster-down cluster-up)" ;;
  esac
done
for c in etcd kube-apiserver; do
  running "$c" || die "$c is not running: start the cluster with make cluster-up"
done
BIN=$(cat "$RUN/assets" 2>/dev/null || true) # recorded by cluster-up
[[ -x $BIN/kube-apiserver && -x $BIN/etcd ]] || die "no Kubernetes binaries recorded in $RUN/assets: start the cluster with make cluster-up"
IP=$(node_ip)
t0=$SECONDS

if $apiserver; then stop kube-apiserver; fi
if $etcd; then
  stop etcd
  start_etcd
  etcd_up || { log_tails 20; die "etcd not healthy 30 s after its restart"; }
fi
if $apiserver; then
  start_kube_apiserver "$IP"
  kube_apiserver_up || { log_tails 20; die "kube-apiserver not ready 60 s after its restart"; }
fi
log "restarted $* in $((SECONDS - t0)) s"
