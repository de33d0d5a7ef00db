#!/usr/bin/env bash
# Installs (or upgrades) kfn with its Helm chart on the cluster in
# $KUBECONFIG and waits until it is ready. The image (kfn.dev/kfn:dev) must
# already be in the cluster: `make images` imports it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?KUBECONFIG must name the cluster to deploy to}"
helm=${HELM:?HELM must name the helm binary}

# Helm installs CRDs only on first install; apply them so an upgrade gets
# changed CRDs too (the documented upgrade path).
kubectl apply --server-side --force-conflicts -f charts/kfn/crds/ >&2
"$helm" upgrade --install kfn charts/kfn --namespace kfn-system --create-namespace \
  --wait --timeout 180s "$@" >&2
# The image tag stays kfn.dev/kfn:dev across builds: restart so a new import is used.
kubectl -n kfn-system rollout restart deployment >&2
kubectl -n kfn-system rollout status deployment --timeout=180s >&2
