# Local one-node cluster (docs/local-cluster.md). Included by the Makefile,
# which defines KFN_CACHE, CLUSTER_DIR and bin/kfn.

##@ Local cluster

.PHONY: cluster-up
cluster-up: ## Start the local one-node cluster (idempotent); prints the kubeconfig path.
	CLUSTER_DIR=$(CLUSTER_DIR) KFN_CACHE=$(KFN_CACHE) hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster; leaves no process or mount (keeps state for a fast restart).
	CLUSTER_DIR=$(CLUSTER_DIR) KFN_CACHE=$(KFN_CACHE) hack/cluster-down.sh

.PHONY: cluster-clean
cluster-clean: ## Stop the local cluster and delete its state dir (CLUSTER_DIR).
	CLUSTER_DIR=$(CLUSTER_DIR) KFN_CACHE=$(KFN_CACHE) hack/cluster-down.sh --purge

.PHONY: images
images: $(if $(wildcard $(CURDIR)/main.go),bin/kfn) ## Build kfn.dev/{pause,busybox,kfn} and the runtime images kfn.dev/{node-20,python-3.11} and import them into the local cluster.
	CLUSTER_DIR=$(CLUSTER_DIR) KFN_CACHE=$(KFN_CACHE) KFN_BIN=$(CURDIR)/bin/kfn \
		hack/build-images.sh $$(test -S $(CLUSTER_DIR)/containerd/containerd.sock && echo --import)

.PHONY: bench-bare-job
bench-bare-job: ## Measure bare busybox Job latency on the local cluster.
	bench/bare-job.sh $(CLUSTER_DIR)/kubeconfig
