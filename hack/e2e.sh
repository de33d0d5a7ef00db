#!/usr/bin/env bash
# Runs the end-to-end suite (test/e2e) on the local cluster: starts the
# cluster if it is not up, deploys the freshly built operator, runs the
# tests, and stops the cluster again if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cache/cluster}
export KUBECONFIG=$CLUSTER_DIR/kubeconfig

started=false
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
  started=true
fi
stop() { if $started; then make --no-print-directory cluster-down >&2; fi; }
trap stop EXIT

make --no-print-directory cluster-up >/dev/null
make --no-print-directory images
hack/deploy.sh
go test -tags e2e -count=1 ${E2E_FLAGS:-} ./test/e2e/
