#!/usr/bin/env bash
# One command from a fresh machine to a working kfn: the local cluster, the
# operator on it, the sample Function and a first Execution of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cache/cluster}
export KUBECONFIG=$CLUSTER_DIR/kubeconfig

make --no-print-directory cluster-up >/dev/null
make --no-print-directory images
hack/deploy.sh
kubectl delete --ignore-not-found -f config/samples/functions_v1alpha1_execution.yaml >&2
kubectl apply -f config/samples/ >&2
kubectl wait --for=jsonpath='{.status.status}'=completed --timeout=120s execution/hello-1 >&2
kubectl get functions,executions
echo
kubectl get execution hello-1 -o jsonpath='response: {.status.response}{"\n"}stdout:   {.status.stdout}stderr:   {.status.stderr}duration: {.status.duration}s{"\n"}'
cat <<MSG

kfn is up. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl get fn,exec
  kubectl create -f - <<<'{"apiVersion":"functions.kfn.dev/v1alpha1","kind":"Execution","metadata":{"generateName":"hello-"},"spec":{"functionName":"hello","data":"you"}}'
  kubectl describe exec hello-1
Stop it with: make cluster-down
MSG
