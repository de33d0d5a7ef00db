#!/usr/bin/env bash
# Static checks of the Helm chart: lint and render with the default values and
# with every optional feature on, refuse bad values through values.schema.json,
# and keep the chart's CRDs and RBAC identical to the generated ones.
set -euo pipefail
cd "$(dirname "$0")/.."
helm=${HELM:?HELM must name the helm binary}
chart=charts/kfn
all=$chart/ci/all-features-values.yaml

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$all"
"$helm" template kfn "$chart" --namespace kfn-system >/dev/null
rendered=$("$helm" template kfn "$chart" --namespace kfn-system -f "$all")
for kind in PodDisruptionBudget ServiceMonitor NetworkPolicy; do
  grep -q "^kind: $kind$" <<<"$rendered" || { echo "all-features render has no $kind"; exit 1; }
done

# Bad values fail at install time with a message naming the value.
expect_refused() {
  local want=$1; shift
  if out=$("$helm" template kfn "$chart" "$@" 2>&1); then
    echo "helm accepted $*"; exit 1
  fi
  grep -q -- "$want" <<<"$out" || { echo "helm refused $* without naming $want:"; echo "$out"; exit 1; }
}
expect_refused runnerDelivery --set manager.runnerDelivery=teleport
expect_refused replicas --set apiserver.replicas=0
expect_refused nodePort --set apiserver.service.type=NodePort --set apiserver.service.nodePort=80
expect_refused managre --set managre.replicas=2
expect_refused watchResources --set "events.watchResources[0]=v1/secrets"

for f in config/crd/bases/*.yaml; do
  cmp "$f" "$chart/crds/$(basename "$f")" || { echo "chart CRD $f differs: run make manifests"; exit 1; }
done
cmp config/rbac/role.yaml "$chart/files/role.yaml"
cmp config/apiserver/rbac/role.yaml "$chart/files/apiserver-role.yaml"
echo "chart checks passed"
