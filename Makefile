# kfn: Kubernetes operator for the Appwrite Functions executions API.

# Tools and heavy builds are pinned and cached in folders this Makefile owns:
# bin/ for project tools, $(KFN_CACHE) (outside the clone, shared between
# clones on one machine) for the Kubernetes components, keyed by version.
LOCALBIN ?= $(CURDIR)/bin
KFN_CACHE ?= $(HOME)/.cache/kfn
CLUSTER_DIR ?= $(CURDIR)/.cache/cluster
export KFN_CACHE CLUSTER_DIR

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
# What helm's own Makefile sets: its version, and the Kubernetes version it
# assumes without a cluster (that of its client-go, v0.37 → 1.37).
HELM_LDFLAGS = -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach pkg,pkg/lint/rules pkg/chartutil,-X helm.sh/helm/v3/$(pkg).k8sVersionMajor=1 -X helm.sh/helm/v3/$(pkg).k8sVersionMinor=37)

GO_TEST_FLAGS ?=
TEST_PKGS ?= ./...

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC (one ClusterRole per component) from markers.
	$(CONTROLLER_GEN) rbac:roleName=kfn-manager crd:allowDangerousTypes=true paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=kfn-apiserver paths="./apiserver/..." output:rbac:artifacts:config=config/apiserver/rbac
	$(CONTROLLER_GEN) rbac:roleName=kfn-apiserver-project paths="./internal/projectaccess/..." output:rbac:artifacts:config=config/apiserver/project-rbac
	mkdir -p charts/kfn/crds charts/kfn/files
	cp config/crd/bases/*.yaml charts/kfn/crds/
	cp config/rbac/role.yaml charts/kfn/files/role.yaml
	cp config/apiserver/rbac/role.yaml charts/kfn/files/apiserver-role.yaml
	cp config/apiserver/project-rbac/role.yaml charts/kfn/files/apiserver-project-role.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt
	go fmt ./...

.PHONY: vet
vet: ## go vet
	go vet ./...

.PHONY: verify-generated
verify-generated: generate manifests ## Fail if generated files are not committed.
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --short -- api config charts; echo "generated files are not committed: run 'make generate manifests' and commit"; exit 1; }

##@ Build

.PHONY: build
build: bin/kfn ## Build the kfn binary (manager, apiserver, jwt, runner).

.PHONY: bin/kfn
bin/kfn:
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/kfn .

##@ Test

.PHONY: kube-assets
kube-assets: ## Build (once, cached) kube-apiserver, etcd and the other Kubernetes components.
	hack/build-kube-assets.sh >/dev/null

.PHONY: test
test: verify-generated vet test-unit test-images test-chart test-e2e ## Run the whole test suite (what CI runs).

.PHONY: test-chart
test-chart: $(HELM) ## Lint and render the Helm chart; check it matches the generated CRDs and RBAC.
	HELM=$(HELM) hack/test-chart.sh

FUZZ_TIME ?= 10s

.PHONY: test-unit
test-unit: kube-assets postgres ## Unit and envtest integration tests (incl. the official SDKs against the facade, the archive on a real PostgreSQL), then a short fuzz run.
	KUBEBUILDER_ASSETS=$$(hack/build-kube-assets.sh) go test $(GO_TEST_FLAGS) $(TEST_PKGS)
	$(MAKE) test-fuzz

.PHONY: postgres
postgres: ## Debian's PostgreSQL server, which the archive's tests start and stop themselves (installed if missing).
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		apt-get install -y -qq --no-install-recommends postgresql >&2 || \
		{ apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends postgresql >&2; }

.PHONY: test-fuzz
test-fuzz: ## Fuzz the facade's query parser for FUZZ_TIME (seed corpus in apiserver/testdata/fuzz).
	go test ./apiserver -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime=$(FUZZ_TIME)

.PHONY: test-images
test-images: build ## Build the node-20 and python-3.11 runtime images and run a function in each (hack/images; needs root, for chroot).
	cd hack/images && KFN_BIN=$(CURDIR)/bin/kfn go test $(GO_TEST_FLAGS) .

.PHONY: test-sdk
test-sdk: kube-assets ## The official Appwrite SDKs (test/sdk, from npm) against the facade on envtest.
	KUBEBUILDER_ASSETS=$$(hack/build-kube-assets.sh) go test -count=1 -v -run '^TestOfficialSDKs$$' ./apiserver

.PHONY: test-e2e
test-e2e: kube-assets build $(HELM) ## End-to-end tests on the local cluster (started and stopped if not up).
	HELM=$(HELM) hack/e2e.sh

##@ Run

.PHONY: up
up: kube-assets build $(HELM) ## Bring up everything: local cluster, operator, sample Function and a first Execution.
	HELM=$(HELM) hack/up.sh

.PHONY: deploy
deploy: images $(HELM) ## Install kfn with its Helm chart on the local cluster.
	KUBECONFIG=$(CLUSTER_DIR)/kubeconfig HELM=$(HELM) hack/deploy.sh

.PHONY: bench
bench: $(HELM) ## Benchmarks B1–B4 on the local cluster (not part of test): one table of ratios, appended to bench/RESULTS.md; then the archive's reads at BENCH_ARCHIVE_RECORDS (1000000).
	HELM=$(HELM) BENCH_FLAGS="$(BENCH_FLAGS)" BENCH_ARCHIVE_RECORDS="$(BENCH_ARCHIVE_RECORDS)" bench/run.sh

include hack/cluster.mk

$(HELM):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $@

$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_\/-]+:.*##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
