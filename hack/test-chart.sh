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
for kind in PodDisruptionBudget ServiceMonitor NetworkPolicy ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding; do
  grep -q "^kind: $kind$" <<<"$rendered" || { echo "all-features render has no $kind"; exit 1; }
done

# Function pods are bounded by default; the Function policy is opt-in, and
# carries the values as its parameters and the rules of files/function-policy.yaml.
defaults=$("$helm" template kfn "$chart" --namespace kfn-system)
expect_rendered() {
  local what=$1 want=$2
  grep -qF -- "$want" <<<"${!what}" || { echo "the $what render lacks: $want"; exit 1; }
}
expect_rendered defaults '- "--default-function-resources={\"limits\":{\"memory\":\"256Mi\"},\"requests\":{\"cpu\":\"50m\",\"memory\":\"64Mi\"}}"'
expect_rendered defaults "- --function-tmp-size-limit=256Mi"
expect_rendered defaults "- --function-runner-dir-size-limit=128Mi"
expect_rendered defaults "- --leader-elect-renew-deadline=30s"
if grep -q "ValidatingAdmissionPolicy" <<<"$defaults"; then echo "the Function policy is on by default"; exit 1; fi
if grep -q -- "--archive" <<<"$defaults"; then echo "the archive is on by default"; exit 1; fi
expect_rendered rendered "- --archive-dsn-file=/etc/kfn-archive/dsn"
expect_rendered rendered "- --archive-keep-live=30m"
expect_rendered rendered "secretName: kfn-archive"
[ "$(grep -c -- "--archive-pool-size=8" <<<"$rendered")" = 2 ] || { echo "the manager and the facade do not both reach the archive"; exit 1; }
expect_rendered rendered '- "--default-function-resources={\"limits\":{\"cpu\":2,\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}"'
expect_rendered rendered "- --function-tmp-size-limit=0"
expect_rendered rendered 'allowedImages: "registry.example.com/functions/,docker.io/library/busybox:1.36"'
expect_rendered rendered 'allowedServiceAccounts: "function-runner"'
expect_rendered rendered 'allowServiceAccountToken: "false"'
expect_rendered rendered "policyName: kfn-function-policy"
expect_rendered rendered "parameterNotFoundAction: Deny"
expect_rendered rendered "kubernetes.io/metadata.name: functions"
expect_rendered rendered "use a runtime from the catalog (spec.runtime)"

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
expect_refused leaderElection --set manager.replicas=2 --set manager.leaderElection=false
expect_refused renewDeadline --set manager.renewDeadline=soon
expect_refused maxBodyMemory --set apiserver.maxBodyMemory=lots
expect_refused ipRateLimit --set apiserver.ipRateLimit=-1
expect_refused watchResources --set "events.watchResources[0]=v1/secrets"
expect_refused nvidia.com/gpu --set "manager.functionDefaults.resources.limits.nvidia\.com/gpu=1"
expect_refused memory --set "manager.functionDefaults.resources.requests.memory=lots"
expect_refused tmpSizeLimit --set manager.functionDefaults.tmpSizeLimit=-1
expect_refused allowedImages --set "functionPolicy.allowedImages[0]=a b"
expect_refused allowServiceAccountToken --set-string functionPolicy.allowServiceAccountToken=yes
expect_refused archive.secretName --set archive.enabled=true
expect_refused poolSize --set archive.poolSize=0
expect_refused keepLive --set archive.keepLive=soon

for f in config/crd/bases/*.yaml; do
  cmp "$f" "$chart/crds/$(basename "$f")" || { echo "chart CRD $f differs: run make manifests"; exit 1; }
done
cmp config/rbac/role.yaml "$chart/files/role.yaml"
cmp config/apiserver/rbac/role.yaml "$chart/files/apiserver-role.yaml"
cmp config/apiserver/project-rbac/role.yaml "$chart/files/apiserver-project-role.yaml"
echo "chart checks passed"
