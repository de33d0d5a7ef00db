#!/usr/bin/env bash
# Starts a one-node local Kubernetes cluster from binaries on this machine:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy
# (iptables) and a kubelet on a private containerd with bridge CNI.
#
# Everything lives under $CLUSTER_DIR (default <repo>/.cache/cluster); every
# process runs in the background with a pid file in $CLUSTER_DIR/run. Running
# it again when the cluster is up only prints the kubeconfig path; when some
# component died it starts just the missing ones.
#
# stdout: the admin kubeconfig path (progress goes to stderr).
# See docs/local-cluster.md.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "$0")/cluster/lib.sh"
# shellcheck source=hack/cluster/pki.sh
source "$(dirname "$0")/cluster/pki.sh"
# shellcheck source=hack/cluster/configs.sh
source "$(dirname "$0")/cluster/configs.sh"
# shellcheck source=hack/cluster/control-plane.sh
source "$(dirname "$0")/cluster/control-plane.sh"
t0=$SECONDS

node_ready() {
  [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
fail() { log "ERROR: $*"; log_tails 20; log "logs: $LOGS; stop with: make cluster-down"; exit 1; }

# 0. Already up? Then there is nothing to do.
all_running=true
for c in "${COMPONENTS[@]}"; do running "$c" || all_running=false; done
if $all_running && [[ -f $KUBECONFIG_ADMIN ]] && node_ready; then
  log "cluster already up"
  echo "$KUBECONFIG_ADMIN"
  exit 0
fi

# 1. Host prerequisites: root, Debian packages, forwarding and bridge netfilter.
[[ $EUID -eq 0 ]] || die "the local cluster runs containerd and a kubelet: run as root"
need=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  iptables:iptables conntrack:conntrack openssl:openssl busybox:busybox-static curl:curl; do
  cmd=${pair%%:*}
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] || need+=("${pair#*:}")
  else command -v "$cmd" >/dev/null || need+=("${pair#*:}"); fi
done
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
fi
sysctl -qw net.ipv4.ip_forward=1
[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null || true
[[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || sysctl -qw net.bridge.bridge-nf-call-iptables=1

# 2. Kubernetes binaries (built once, cached in $KFN_CACHE).
BIN=$(kube_assets)
mkdir -p "$RUN" && echo "$BIN" >"$RUN/assets" # for cluster-down's kube-proxy --cleanup
IP=$(node_ip)
log "node $NODE_NAME, IP $IP, state in $CLUSTER_DIR"

# 3. PKI, kubeconfigs and component configs.
make_pki "$IP"
write_configs "$IP"

# 4. containerd (private instance), then the pause and busybox images.
start containerd containerd --config "$CONF/containerd.toml"
wait_for 30 containerd ctr_ version || fail "containerd did not answer on $CTRD_SOCK"
"$repo/hack/build-images.sh" --import pause busybox >&2 || fail "building or importing images failed"

# 5. etcd and kube-apiserver.
start_etcd
etcd_up || fail "etcd not healthy"
start_kube_apiserver "$IP"
kube_apiserver_up || fail "kube-apiserver not ready"

# 6. Controllers, scheduler, kube-proxy and the kubelet.
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$CONF/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$CONF/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$CONF/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
start kube-scheduler "$BIN/kube-scheduler" --config "$CONF/kube-scheduler.yaml" \
  --authentication-kubeconfig "$CONF/scheduler.kubeconfig" \
  --authorization-kubeconfig "$CONF/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --profiling=false
start kube-proxy "$BIN/kube-proxy" --config "$CONF/kube-proxy.yaml"
# A Node left from an earlier run (kubelet crashed) would show a stale Ready.
running kubelet || kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null
start kubelet "$BIN/kubelet" --config "$CONF/kubelet.yaml" \
  --kubeconfig "$CONF/kubelet.kubeconfig" --root-dir "$KUBELET_DIR" \
  --hostname-override "$NODE_NAME" --node-ip "$IP"

# 7. Wait for the node, and for the default ServiceAccount pods need.
wait_for "$READY_TIMEOUT" node node_ready || fail "node $NODE_NAME not Ready after ${READY_TIMEOUT}s"
wait_for 30 "default ServiceAccount" kc -n default get serviceaccount default ||
  fail "no default ServiceAccount after 30s (kube-controller-manager)"
for c in "${COMPONENTS[@]}"; do running "$c" || fail "$c exited"; done
log "node $NODE_NAME Ready after $((SECONDS - t0)) s; export KUBECONFIG=$KUBECONFIG_ADMIN"
echo "$KUBECONFIG_ADMIN"
