# Build and test elector. Run `make` for the list of targets.
#
# The integration tests run a real kube-apiserver and etcd, built from source
# on first use (about ten minutes on two cores) and cached in
# ~/.cache/elector/controlplane (set ELECTOR_CACHE_DIR to move it).

GO ?= go

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The version stamped into the binary (elector --version): the nearest tag
# and the commit, from git; override with make build VERSION=v1.2.3.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo "(devel)")
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.buildVersion=$(VERSION) -X main.buildCommit=$(COMMIT)

.PHONY: build
build: ## Build the sidecar into bin/elector and the kubectl plugin into bin/kubectl-elector, static, stamped with VERSION and COMMIT
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o bin/elector ./cmd/elector
	cd cmd/kubectl-elector && CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(CURDIR)/bin/kubectl-elector .

# Every timestamp in the image, for reproducible builds (two builds of one
# commit give the same digest): the commit time of HEAD.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# Where make image writes: oci/ (an OCI image layout), one docker-load
# tarball per platform, and the digest.
IMAGE_OUT := _output/image

.PHONY: image
image: ## Build the sidecar's image (linux/amd64,arm64,ppc64le,s390x) without Docker into _output/image; prints its digest
	cd tools/image && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/elector-image build \
		--source=$(CURDIR) --out=$(CURDIR)/$(IMAGE_OUT) --version='$(VERSION)' --commit='$(COMMIT)'

.PHONY: image-push
image-push: image ## Push the image to REGISTRY (e.g. make image-push REGISTRY=ghcr.io/x/elector), tagged VERSION
	cd tools/image && $(GO) run ./cmd/elector-image push --out=$(CURDIR)/$(IMAGE_OUT) --registry='$(REGISTRY)'

.PHONY: test
test: test-unit test-integration test-e2e test-chaos ## Run every tier with -race: the README's test command, and CI's

.PHONY: test-unit
test-unit: ## Unit tests, no control plane: library, sidecar, rbac, bench tools, image tool, ctrl
	$(GO) test -race -count=1 ./...
	cd bench && $(GO) test -race -count=1 ./...
	cd test/leaderelector05 && $(GO) test -race -count=1 ./...
	cd tools/image && $(GO) test -race -count=1 ./...
	cd cmd/kubectl-elector && $(GO) test -race -count=1 ./...
	cd ctrl && $(GO) test -race -count=1 ./...

.PHONY: test-integration
test-integration: controlplane ## The harness and the library against a real kube-apiserver + etcd
	cd test && $(GO) test -race -count=1 ./controlplane/... ./integration/... ./election/... ./handoff/... ./internal/... ./cmd/...

.PHONY: test-e2e
test-e2e: controlplane ## The sidecar, kubectl-elector and the ctrl example operator as processes, with real ServiceAccount tokens
	cd test && $(GO) test -race -count=1 ./e2e/... ./kubectlelector/...

.PHONY: test-chaos
test-chaos: controlplane ## Short seeded fault schedules and the overlap checker (the long run is make chaos)
	cd test && $(GO) test -race -count=1 ./chaos/...

.PHONY: controlplane
controlplane: ## Build kube-apiserver and etcd for the tests (first run only)
	cd test && $(GO) run ./cmd/controlplane build

.PHONY: cluster
cluster: ## Run a control plane in the foreground until Ctrl-C
	cd test && $(GO) run ./cmd/controlplane run

.PHONY: demo
demo: controlplane ## Run the demo against a local control plane
	cd test && $(GO) run ./cmd/demo

.PHONY: lint
lint: ## Run go vet in every module
	$(GO) vet ./...
	cd test && $(GO) vet ./...
	cd test/kube && $(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd test/leaderelector05 && $(GO) vet ./...
	cd tools/image && $(GO) vet ./...
	cd cmd/kubectl-elector && $(GO) vet ./...
	cd ctrl && $(GO) vet ./...

.PHONY: tidy
tidy: ## Tidy the go.mod files of every module
	$(GO) mod tidy
	cd test && $(GO) mod tidy
	cd test/kube && $(GO) mod tidy
	cd bench && $(GO) mod tidy
	cd test/leaderelector05 && $(GO) mod tidy
	cd tools/image && $(GO) mod tidy
	cd cmd/kubectl-elector && $(GO) mod tidy
	cd ctrl && $(GO) mod tidy

.PHONY: bench
bench: controlplane ## Benchmark elector against client-go; writes BENCHMARKS.md (~15 min; BENCHFLAGS=--quick: ~4 min smoke test)
	cd bench && $(GO) run ./cmd/bench --out ../BENCHMARKS.md $(BENCHFLAGS)

# N is the number of schedules `make chaos` runs.
N ?= 200

.PHONY: chaos
chaos: controlplane ## Long chaos run: N seeded fault schedules (default 200, about 75 min); prints the table of CHAOS.md
	cd test && $(GO) run ./chaos/cmd/chaos -n $(N)
