#!/usr/bin/env bash
# Latency of bare busybox Jobs on a cluster, from `kubectl create` to the
# Job's Complete condition, as seen by a client (wall clock around kubectl;
# includes kubectl's own start-up of ~0.1 s).
#
#   bench/bare-job.sh KUBECONFIG [REPEATS]
#
# Cases: `sleep 2` and `true`, one Job at a time (REPEATS runs, default 3)
# and 10 Jobs created at once (per-Job latency and time until the last one).
# Needs the image kfn.dev/busybox:test in the node's containerd (make
# cluster-up imports it); pods use imagePullPolicy: Never. Works in its own
# namespace, deleted at the end.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 KUBECONFIG [REPEATS]" >&2; exit 2; }
export KUBECONFIG=$1
repeats=${2:-3}
ns=kfn-bench
image=${BENCH_IMAGE:-kfn.dev/busybox:test}
k() { kubectl -n "$ns" "$@"; }
now() { date +%s.%N; }

job() { # job NAME CMD...: a Job manifest
  local name=$1; shift
  local args
  args=$(printf '"%s", ' "$@")
  cat <<EOF
---
apiVersion: batch/v1
kind: Job
metadata: {name: $name, labels: {app: bare-job}}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {app: bare-job}}
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: $image
        imagePullPolicy: Never
        command: [${args%, }]
EOF
}

cleanup() { k delete jobs -l app=bare-job --wait >/dev/null; k wait --for=delete pods -l app=bare-job --timeout 60s >/dev/null 2>&1 || true; }

# run N CMD...: create N Jobs at once; prints per-Job latencies (s), sorted,
# then the time until the last one completed.
run() {
  local n=$1 i t0 dir; shift
  dir=$(mktemp -d)
  for ((i = 0; i < n; i++)); do job "bare-$i" "$@"; done >"$dir/jobs.yaml"
  t0=$(now)
  k create -f "$dir/jobs.yaml" >/dev/null
  for ((i = 0; i < n; i++)); do
    (k wait --for=condition=Complete "job/bare-$i" --timeout 120s >/dev/null && now >"$dir/$i") &
  done
  wait
  for ((i = 0; i < n; i++)); do
    [[ -s $dir/$i ]] || { echo "job bare-$i did not complete" >&2; k describe "job/bare-$i" >&2; exit 1; }
    awk -v end="$(<"$dir/$i")" -v start="$t0" 'BEGIN {print end - start}'
  done | sort -n | awk '{a[NR] = $1} END {
      if (NR == 1) { printf "%.2f\n", a[1]; exit }
      printf "min %.2f  median %.2f  max(all done) %.2f\n", a[1], a[int((NR + 1) / 2)], a[NR] }'
  rm -rf "$dir"
  cleanup
}

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
until k get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
cleanup
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT

for cmd in "sleep 2" "true"; do
  # shellcheck disable=SC2086
  for ((r = 1; r <= repeats; r++)); do
    printf '1 Job   %-8s run %d: %s s\n' "$cmd" "$r" "$(run 1 $cmd)"
  done
  # shellcheck disable=SC2086
  printf '10 Jobs %-8s      : %s s\n' "$cmd" "$(run 10 $cmd)"
done
