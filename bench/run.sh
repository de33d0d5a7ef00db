#!/usr/bin/env bash
# `make bench`: benchmarks B1–B4 (bench/scale) on the local one-node
# cluster. Starts the cluster if it is not up, builds and imports the images,
# installs kfn with its Helm chart (no rate limit), runs the benchmarks,
# prints one table of ratios against baselines measured in the same run and
# appends the run to bench/RESULTS.md. Then the archive (bench/archive,
# issue 15), printed only: its reads with BENCH_ARCHIVE_RECORDS archived
# records (default 1 000 000, 0 skips both) against 1 000, in a PostgreSQL
# on this machine, and how it keeps up with B2's burst. The cluster stays up; the bench namespaces are
# deleted. Not part of `make test`; timings are never asserted.
#
#   make bench                                   # ~15 min on 2 cores, and the archive's
#   make bench BENCH_FLAGS='--runs 20 --with-100k'
#   BENCH_DEPLOY_FLAGS='--set apiserver.resources.limits.memory=1Gi' make bench
#   BENCH_ARCHIVE_RECORDS=100000 make bench
set -euo pipefail
cd "$(dirname "$0")/.."
export CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cache/cluster}
export KUBECONFIG=$CLUSTER_DIR/kubeconfig
: "${HELM:?HELM must name the helm binary}"

make --no-print-directory cluster-up >/dev/null
make --no-print-directory images
# shellcheck disable=SC2086
hack/deploy.sh --set apiserver.rateLimit=0 --set manager.maxRunningPerNamespace=0 ${BENCH_DEPLOY_FLAGS:-}

cmd="make bench"
[[ -n ${BENCH_FLAGS:-} ]] && cmd+=" BENCH_FLAGS='$BENCH_FLAGS'"
[[ -n ${BENCH_DEPLOY_FLAGS:-} ]] && cmd="BENCH_DEPLOY_FLAGS='$BENCH_DEPLOY_FLAGS' $cmd"
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
# shellcheck disable=SC2086
go run ./bench/scale --command "$cmd" --label "make bench" \
  --note "built from this tree ($rev), installed by hack/deploy.sh --set apiserver.rateLimit=0 --set manager.maxRunningPerNamespace=0 ${BENCH_DEPLOY_FLAGS:-}" \
  ${BENCH_FLAGS:-}

archived=${BENCH_ARCHIVE_RECORDS:-1000000}
if ((archived > 0)); then
  go test -tags bench -count=1 -timeout 90m -run 'TestArchiveReads|TestArchiveKeepsUpWithABurst' -v ./bench/archive/ -args -records="$archived"
fi
