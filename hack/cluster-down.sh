#!/usr/bin/env bash
# Stops the local cluster of hack/cluster-up.sh and cleans up after it, in an
# order that leaves no process, mount, network namespace, iptables chain or
# bridge behind:
#
#   1. stop the scheduler, then delete the node's pods through the
#      still-running kubelet (bounded wait), then the controller-manager;
#   2. stop the kubelet; kill and remove whatever containers remain;
#   3. stop containerd and any shim of it that outlived it;
#   4. stop kube-proxy and run `kube-proxy --cleanup`; stop the apiserver, etcd;
#   5. remove pod network namespaces, CNI iptables rules and chains, the bridge;
#   6. unmount everything under $CLUSTER_DIR, deepest first.
#
# State (PKI, etcd data, images) stays for a fast next start; --purge also
# deletes $CLUSTER_DIR. Safe to run when the cluster is (partly) down.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "$0")/cluster/lib.sh"
purge=false
[[ ${1:-} != --purge ]] || purge=true
[[ $EUID -eq 0 ]] || die "run as root (the cluster runs as root)"
t0=$SECONDS
ours=()
for c in "${COMPONENTS[@]}"; do ours+=("$(pid_of "$c" || true)"); done

# 1. Delete the node's pods while the kubelet still runs, so that it tears
# them down properly. The scheduler goes first (nothing new gets bound); the
# controller-manager stays meanwhile, as the Job controller must remove its
# batch.kubernetes.io/job-tracking finalizer from terminated Job pods.
# Replacement pods that controllers create stay Pending, for the next start.
stop kube-scheduler
if running kube-apiserver && running kubelet && running containerd; then
  log "deleting the pods on $NODE_NAME (bounded: 60 s)"
  timeout 75 kubectl --kubeconfig "$KUBECONFIG_ADMIN" delete pods --all-namespaces \
    --field-selector "spec.nodeName=$NODE_NAME" \
    --wait --timeout 60s --grace-period "${KFN_DOWN_GRACE:-5}" >&2 ||
    log "pod deletion incomplete; removing the rest by force"
fi
stop kube-controller-manager

# 2. The kubelet, then any container left (tasks killed, containers removed).
stop kubelet 20
if running containerd; then
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
  done
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_ tasks delete -f "$task" >/dev/null 2>&1 && break; sleep 0.2; done
  done
  for c in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers rm "$c" >/dev/null 2>&1 || true
    rm -f /var/lib/cni/results/*-"$c"-* # libcni's cache of a sandbox that got no CNI DEL
  done
fi

# Pods whose containers were just removed by force must not outlive them in
# etcd: the next kubelet would find them bound to it with nothing behind.
if running kube-apiserver; then
  timeout 30 kubectl --kubeconfig "$KUBECONFIG_ADMIN" delete pods --all-namespaces \
    --field-selector "spec.nodeName=$NODE_NAME" --force --grace-period 0 --wait=false >/dev/null 2>&1 || true
fi

# 3. containerd, and shims of it still alive (they survive containerd by
# design); kube-proxy meanwhile.
stop containerd 20 & stop kube-proxy & wait
for pid in $(pgrep -f -- "containerd-shim.* -address $CTRD_SOCK" || true); do
  log "killing leftover shim $pid"
  kill -KILL "$pid" 2>/dev/null || true
done

# 4. kube-proxy's iptables rules; the Node object (so that a stale Ready
# status never outlives its kubelet); the apiserver, etcd.
BIN=$(cat "$RUN/assets" 2>/dev/null || true) # recorded by cluster-up
if [[ -x $BIN/kube-proxy ]]; then
  "$BIN/kube-proxy" --cleanup >>"$LOGS/kube-proxy.log" 2>&1 || log "kube-proxy --cleanup failed (see $LOGS/kube-proxy.log)"
fi
if running kube-apiserver; then
  timeout 20 kubectl --kubeconfig "$KUBECONFIG_ADMIN" delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
fi
stop kube-apiserver
stop etcd

# 5. Pod networking: namespaces of our pod range without processes, CNI
# iptables rules tagged with our network name and the chains they emptied,
# the kubelet's own KUBE-* chains (kube-proxy --cleanup leaves them), the
# bridge, IPAM leases and libcni's result cache.
prefix=${NODE_POD_CIDR%.*}.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
  [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] || continue
  ip -n "$ns" -4 -o addr show 2>/dev/null | grep -qF " $prefix" || continue
  ip netns delete "$ns" && log "removed network namespace $ns"
done
# drop_rules TOOL TABLE REGEX: delete the rules whose iptables-save line
# matches REGEX (grep -E), then the CNI-/KUBE- chains left empty and
# unreferenced.
drop_rules() {
  local tool=$1 table=$2 regex=$3 rule chain dump
  { "$tool-save" -t "$table" 2>/dev/null || true; } | { grep -E -- "$regex" || true; } |
    sed 's/^-A /-D /' | while read -r rule; do eval "$tool -w -t $table $rule" 2>/dev/null || true; done
  dump=$("$tool-save" -t "$table" 2>/dev/null || true)
  for chain in $(awk '/^:(CNI|KUBE)-/ {print substr($1, 2)}' <<<"$dump"); do
    grep -qE -- "(^-A $chain |-j $chain( |\$))" <<<"$dump" || "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true
  done
}
kubelet_chains='KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT)'
for table in nat filter mangle; do
  # bridge ipMasq and portmap rules carry the comment: name: "kfn" id: "<sandbox>"
  drop_rules iptables "$table" "^-A .*name: [^ ]*${CNI_NETWORK}[^ ]* id: "
  for tool in iptables ip6tables; do
    drop_rules "$tool" "$table" "^-A ($kubelet_chains |.*-j $kubelet_chains\$)"
  done
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" && log "removed bridge $BRIDGE"; fi
rm -rf "${CNI_DIR:?}/ipam/$CNI_NETWORK" /var/lib/cni/results/"$CNI_NETWORK"-*

# 6. Mounts under the state dir (overlay rootfs, shm, kubelet volumes and the
# kubelet's own rshared bind of its root dir), deepest first, a few passes.
mounts() {
  findmnt -rn -o TARGET | awk -v d="$CLUSTER_DIR" '$0 == d || index($0, d "/") == 1 {print length, $0}' |
    sort -rn | cut -d' ' -f2-
}
for _ in 1 2 3 4 5; do
  list=$(mounts)
  [[ -n $list ]] || break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$list"
done
# Empty pod cgroups the kubelet left (cgroup v1 and v2 layouts).
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods.slice; do
  [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# Check: nothing of ours may remain.
left=()
for c in "${COMPONENTS[@]}"; do running "$c" && left+=("$c (pid $(pid_of "$c"))"); done
((${#left[@]} == 0)) || die "still running: ${left[*]}"
[[ -z $(mounts) ]] || die "mounts left under $CLUSTER_DIR: $(mounts | tr '\n' ' ')"
# Our processes were reparented to PID 1 when cluster-up exited; it may reap
# them a moment late. Wait (bounded) so that they are gone from ps, too.
for _ in $(seq 50); do
  zombies=0
  for pid in "${ours[@]}"; do [[ -z $pid || ! -e /proc/$pid ]] || zombies=1; done
  ((zombies)) || break
  sleep 0.1
done

if $purge; then rm -rf "${CLUSTER_DIR:?}" && log "removed $CLUSTER_DIR"; fi
log "cluster down after $((SECONDS - t0)) s"
