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
# The sidecar leaves out net/http's bundled copy of HTTP/2: client-go speaks
# HTTP/2 through golang.org/x/net/http2, which it configures on its own
# transports, and the sidecar's HTTP server is plain HTTP/1.1. 0.5 MiB less
# binary, 0.3-0.4 MiB less RSS (BENCHMARKS.md); tools/image and the
# Dockerfile build with the same tag.
TAGS := nethttpomithttp2

.PHONY: build
build: ## Build the sidecar into bin/elector and the kubectl plugin into bin/kubectl-elector, static, stamped with VERSION and COMMIT
	CGO_ENABLED=0 $(GO) build -trimpath -tags=$(TAGS) -ldflags="$(LDFLAGS)" -o bin/elector ./cmd/elector
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

# Checked before make image runs, so that a missing REGISTRY fails at once.
ifneq ($(filter image-push,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error make image-push needs REGISTRY, the repository to push to: make image-push REGISTRY=ghcr.io/you/elector)
endif
endif

.PHONY: image-push
image-push: image ## Push the image to REGISTRY (e.g. make image-push REGISTRY=ghcr.io/x/elector), tagged VERSION
	cd tools/image && $(GO) run ./cmd/elector-image push --out=$(CURDIR)/$(IMAGE_OUT) --registry='$(REGISTRY)'

.PHONY: test
test: test-unit test-rules test-integration test-e2e test-chaos ## Run every tier with -race: the README's test command, and CI's

.PHONY: test-unit
test-unit: ## Unit tests, no control plane: library, sidecar, rbac, bench tools, image tool, ctrl
	$(GO) test -race -count=1 ./...
	cd bench && $(GO) test -race -count=1 ./...
	cd test/leaderelector05 && $(GO) test -race -count=1 ./...
	cd tools/image && $(GO) test -race -count=1 ./...
	cd cmd/kubectl-elector && $(GO) test -race -count=1 ./...
	cd ctrl && $(GO) test -race -count=1 ./...
	cd tools/monitoring && $(GO) test -race -count=1 ./...

.PHONY: test-integration
test-integration: controlplane ## The harness and the library against a real kube-apiserver + etcd
	cd test && $(GO) test -race -count=1 ./controlplane/... ./integration/... ./election/... ./handoff/... ./shard/... ./internal/... ./cmd/...

.PHONY: test-e2e
# -timeout: on a cold Go build cache the image test (test/e2e/image_test.go)
# cross-compiles the sidecar for four platforms, 3 to 4 minutes on 2 cores,
# which with the rest of the tier can pass go test's default of 10 minutes.
test-e2e: controlplane ## The sidecar, kubectl-elector and the ctrl example operator as processes, with real ServiceAccount tokens
	cd test && ELECTOR_PROMETHEUS=$(PROMETHEUS) $(GO) test -race -count=1 -timeout=30m ./e2e/... ./kubectlelector/...

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

# The Go modules, one word each: a new module is added here. make lint runs
# golangci-lint and go mod tidy -diff in each; make tidy tidies each.
# test/kube only pins k8s.io/kubernetes: it is tidied, not linted.
MODULES := . test bench test/leaderelector05 tools/image cmd/kubectl-elector ctrl tools/monitoring
TIDY_ONLY := test/kube

# Tools pinned by version and built from source on first use, like the
# control plane, into ELECTOR_TOOLS_DIR (default ~/.cache/elector/tools, or
# $ELECTOR_CACHE_DIR/tools); a version bump builds the new one beside it.
ELECTOR_TOOLS_DIR ?= $(if $(ELECTOR_CACHE_DIR),$(ELECTOR_CACHE_DIR)/tools,$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/elector/tools)
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(ELECTOR_TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(ELECTOR_TOOLS_DIR)/actionlint-$(ACTIONLINT_VERSION)
GORELEASER_VERSION := v2.15.1
GORELEASER := $(ELECTOR_TOOLS_DIR)/goreleaser-$(GORELEASER_VERSION)

# $(call go-install,FILE,PACKAGE@VERSION): go install into a scratch GOBIN,
# then move the binary to FILE, so an interrupted build leaves no FILE.
define go-install
	@echo "building $(notdir $(1)) from source (first run only)"
	@rm -rf $(1).tmp && mkdir -p $(1).tmp
	GOBIN=$(1).tmp $(GO) install $(2)
	@mv $(1).tmp/* $(1) && rm -rf $(1).tmp
endef

# About 1.5 minutes on two cores.
$(GOLANGCI_LINT):
	$(call go-install,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION))

$(ACTIONLINT):
	$(call go-install,$@,github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION))

# About 8 minutes on two cores with an empty module cache (3.5 of CPU).
$(GORELEASER):
	$(call go-install,$@,github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION))

# promtool, for the alerting rules' unit tests (make test-rules), from the
# Prometheus module (v0.316.0 is Prometheus 3.x). -tags=remove_all_sd
# leaves out the service-discovery plugins but file and HTTP (the cloud
# SDKs: AWS, Azure, GCE... are most of the build); neither the rule tests
# nor the e2e test needs them.
PROMETHEUS_VERSION := v0.316.0
# promtool so built: 4m51s on this 2-core machine under heavy load, with
# part of the dependencies already in the Go build cache.
PROMETHEUS_TAGS := remove_all_sd
PROMTOOL := $(ELECTOR_TOOLS_DIR)/promtool-$(PROMETHEUS_VERSION)

$(PROMTOOL):
	$(call go-install,$@,-tags=$(PROMETHEUS_TAGS) github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION))

.PHONY: test-rules
test-rules: $(PROMTOOL) ## promtool check and unit-test the alerting and recording rules of deploy/monitoring
	$(PROMTOOL) check rules deploy/monitoring/rules.yaml
	cd deploy/monitoring/tests && $(PROMTOOL) test rules rules_test.yaml

# The Prometheus server of the monitoring e2e test (test/e2e/prometheus_test.go).
PROMETHEUS := $(ELECTOR_TOOLS_DIR)/prometheus-$(PROMETHEUS_VERSION)

$(PROMETHEUS):
	$(call go-install,$@,-tags=$(PROMETHEUS_TAGS) github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION))

# test/e2e/prometheus_test.go needs it (a second prerequisite line: the
# variable is defined after test-e2e's rule).
test-e2e: $(PROMETHEUS)

.PHONY: prometheus
prometheus: $(PROMETHEUS) ## Build the Prometheus server of the monitoring e2e test (first run only)

.PHONY: test-prometheus
test-prometheus: controlplane $(PROMETHEUS) ## The shipped rules and dashboard on a real Prometheus scraping sidecars on the real control plane
	cd test && ELECTOR_PROMETHEUS=$(PROMETHEUS) $(GO) test -race -count=1 -run TestMonitoringKit ./e2e/

.PHONY: monitoring
monitoring: ## Regenerate deploy/monitoring (rules, PrometheusRule, dashboard, rule tests) from tools/monitoring
	cd tools/monitoring && $(GO) run ./cmd/gen-monitoring $(CURDIR)/deploy/monitoring

.PHONY: tools
tools: $(GOLANGCI_LINT) $(ACTIONLINT) $(GORELEASER) $(PROMTOOL) ## Build the pinned golangci-lint, actionlint, goreleaser and promtool (first run only)

.PHONY: lint
lint: $(GOLANGCI_LINT) $(ACTIONLINT) ## golangci-lint (.golangci.yml) and go mod tidy -diff in every module; actionlint on .github/workflows; license headers
	@status=0; \
	for m in $(MODULES); do \
		echo "golangci-lint: $$m"; \
		(cd $$m && $(GOLANGCI_LINT) run --allow-serial-runners --config=$(CURDIR)/.golangci.yml ./...) || status=1; \
	done; \
	for m in $(MODULES) $(TIDY_ONLY); do \
		echo "go mod tidy -diff: $$m"; \
		(cd $$m && $(GO) mod tidy -diff) || { echo "$$m: go.mod or go.sum is not tidy: run make tidy"; status=1; }; \
	done; \
	echo "actionlint: .github/workflows"; \
	$(ACTIONLINT) || status=1; \
	echo "license headers: hack/headers.sh"; \
	hack/headers.sh || status=1; \
	exit $$status

.PHONY: fmt
fmt: $(GOLANGCI_LINT) ## Format every module with the formatters of .golangci.yml (gofmt, gofumpt)
	for m in $(MODULES); do (cd $$m && $(GOLANGCI_LINT) fmt --config=$(CURDIR)/.golangci.yml ./...) || exit 1; done

.PHONY: tidy
tidy: ## Tidy the go.mod files of every module
	for m in $(MODULES) $(TIDY_ONLY); do (cd $$m && $(GO) mod tidy) || exit 1; done

# How long make fuzz runs each fuzz target.
FUZZTIME ?= 5s

.PHONY: fuzz
fuzz: ## Run every fuzz target (func FuzzX in any module) for FUZZTIME (5s) each; their seeds also run in make test
	GO=$(GO) hack/fuzz.sh $(FUZZTIME)

.PHONY: release-snapshot
release-snapshot: $(GORELEASER) ## Build the release archives and checksums as a tag would (.goreleaser.yaml) into _output/dist, unpublished
	$(GORELEASER) release --snapshot --clean

.PHONY: bench
bench: controlplane ## Benchmark elector against client-go; writes BENCHMARKS.md (~15 min; BENCHFLAGS=--quick: ~4 min smoke test)
	cd bench && $(GO) run ./cmd/bench --out ../BENCHMARKS.md $(BENCHFLAGS)

# N is the number of schedules `make chaos` runs.
N ?= 200

.PHONY: chaos
chaos: controlplane ## Long chaos run: N seeded fault schedules (default 200, about 75 min), then 10 sharded ones (about 12 min); prints the table of CHAOS.md
	cd test && $(GO) run ./chaos/cmd/chaos -n $(N)
