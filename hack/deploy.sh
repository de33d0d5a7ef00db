#!/usr/bin/env bash
# Deploys the operator from config/default onto the cluster in $KUBECONFIG
# and waits until it is ready. The image (kfn.dev/kfn:dev) must already be
# in the cluster: `make images` imports it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?KUBECONFIG must name the cluster to deploy to}"

kubectl apply --server-side --force-conflicts -k config/default >&2
kubectl wait --for=condition=Established --timeout=60s crd/functions.functions.kfn.dev crd/executions.functions.kfn.dev >&2
# The image tag stays the same across builds: restart so a fresh import is used.
kubectl -n kfn-system rollout restart deployment/kfn-manager >&2
kubectl -n kfn-system rollout status deployment/kfn-manager --timeout=120s >&2
