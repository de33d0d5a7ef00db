# Shared settings and helpers of hack/cluster-up.sh and hack/cluster-down.sh.
# Sourced, not run. Every path the local cluster writes is under $CLUSTER_DIR.
# shellcheck shell=bash disable=SC2034 # settings are used by the scripts sourcing this

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

CLUSTER_DIR=${CLUSTER_DIR:-$repo/.cache/cluster}
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
export CLUSTER_DIR KFN_CACHE=${KFN_CACHE:-$HOME/.cache/kfn}

# Names, addresses and ports (override through the environment).
NODE_NAME=${KFN_NODE_NAME:-kfn-node}
APISERVER_PORT=${KFN_APISERVER_PORT:-6443}
ETCD_PORT=${KFN_ETCD_PORT:-12379}           # client; the peer port is +1
SERVICE_CIDR=10.96.0.0/12
SERVICE_IP=10.96.0.1                         # the `kubernetes` Service
POD_CIDR=10.244.0.0/16                       # cluster pod range (kube-proxy)
NODE_POD_CIDR=10.244.0.0/24                  # this node's share (CNI host-local)
BRIDGE=${KFN_BRIDGE:-kfn0}                   # CNI bridge, private name
CNI_NETWORK=kfn                              # CNI network name
READY_TIMEOUT=${KFN_READY_TIMEOUT:-120}      # seconds cluster-up waits for Ready

# Layout of $CLUSTER_DIR.
PKI=$CLUSTER_DIR/pki                   # CA, certificates, keys
CONF=$CLUSTER_DIR/conf                 # component kubeconfigs and configs
RUN=$CLUSTER_DIR/run                   # <component>.pid
LOGS=$CLUSTER_DIR/logs                 # <component>.log, pods/ (container logs)
IMAGES=$CLUSTER_DIR/images             # image tarballs (hack/build-images.sh)
CTRD=$CLUSTER_DIR/containerd           # private containerd: root/ state/ runc/ sock
CTRD_SOCK=$CTRD/containerd.sock
KUBELET_DIR=$CLUSTER_DIR/kubelet       # kubelet --root-dir
ETCD_DIR=$CLUSTER_DIR/etcd
CNI_DIR=$CLUSTER_DIR/cni               # net.d/ (config) and ipam/ (leases)
KUBECONFIG_ADMIN=$CLUSTER_DIR/kubeconfig

# Components in start order; cluster-down stops them in reverse.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet)

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# kube-assets prints the folder of the Kubernetes binaries (built once, cached).
kube_assets() { "$repo/hack/build-kube-assets.sh"; }

kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

# pid_of NAME prints the pid of component NAME if it runs. A pid counts only
# while its command line still names $CLUSTER_DIR, so a reused pid is never
# taken for ours.
pid_of() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ -n $pid ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CLUSTER_DIR" || return 1
  echo "$pid"
}
running() { pid_of "$1" >/dev/null; }

# start NAME CMD... runs CMD in the background in its own session, output to
# $LOGS/NAME.log, pid to $RUN/NAME.pid. No-op when NAME already runs.
start() {
  local name=$1; shift
  if running "$name"; then log "$name already running (pid $(pid_of "$name"))"; return; fi
  mkdir -p "$RUN" "$LOGS"
  echo "--- $(date -Is) $*" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  log "started $name (pid $!)"
}

# alive PID: the process exists and is not a zombie (its parent, often PID 1
# once cluster-up has exited, may reap it late).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# stop NAME [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (default 10).
stop() {
  local name=$1 grace=${2:-10} pid i
  if ! pid=$(pid_of "$name"); then rm -f "$RUN/$name.pid"; return; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    log "$name (pid $pid) ignored SIGTERM for ${grace}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
  fi
  rm -f "$RUN/$name.pid"
  log "stopped $name"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
  local timeout=$1 what=$2 deadline; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# log_tails prints the end of every component log (for failures).
log_tails() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -f $LOGS/$c.log ]] || continue
    if running "$c"; then echo "==> $LOGS/$c.log (running) <==" >&2
    else echo "==> $LOGS/$c.log (NOT running) <==" >&2; fi
    tail -n "${1:-15}" "$LOGS/$c.log" >&2
  done
}

# node_ip prints this machine's primary IPv4 address (source of the default
# route), falling back to the first global address.
node_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i+1); exit }}')
  [[ -n $ip ]] || ip=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
  [[ -n $ip ]] || die "no IPv4 address for the node (need a non-loopback interface)"
  echo "$ip"
}
