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

# The version stamped into the binary (elector --version): the nearest
# release tag (v1.2.3, or v1.2.3-4-gabcdef-dirty past it) from git, or
# "(devel)" before the first tag or outside git (README, Install and
# versions); override with make build VERSION=v1.2.3.
VERSION ?= $(shell git describe --tags --match='v[0-9]*' --dirty 2>/dev/null || echo "(devel)")
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.buildVersion=$(VERSION) -X main.buildCommit=$(COMMIT)
# The sidecar leaves out net/http's bundled copy of HTTP/2: client-go speaks
# HTTP/2 through golang.org/x/net/http2, which it configures on its own
# transports, and the sidecar's HTTP server is plain HTTP/1.1. Less binary
# and less RSS (before and after: BENCHMARKS.md, Footprint); tools/image and the
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
test: test-unit test-sim test-rules test-integration test-e2e test-chaos ## Run every tier with -race: the README's test command, and CI's

# go test -timeout per tier: how long one package's test binary may run
# before go test kills it with every goroutine's stack. A wait in a test
# fails on its own after 30 seconds (internal/testwait), so these catch
# only what no wait bounds; they are set so that a hang costs minutes of
# CI's 90, not all of them, yet stay far above a tier's normal run on 2
# loaded cores (whole make test: about 13 minutes).
# Unit packages run in seconds; cmd/elector's longest test builds the
# binary (a minute or two on a cold cache).
UNIT_TIMEOUT ?= 5m
# The slowest integration packages run a few minutes against the control
# plane.
INTEGRATION_TIMEOUT ?= 10m
# On a cold Go build cache the image test (test/e2e/image_test.go)
# cross-compiles the sidecar for four platforms, 3 to 4 minutes on 2 cores,
# on top of the rest of the e2e package.
E2E_TIMEOUT ?= 20m
CHAOS_TIMEOUT ?= 10m

# The modules whose tests need no control plane: make test-unit and make
# stress run these.
UNIT_MODULES := . bench test/leaderelector05 tools/image cmd/kubectl-elector ctrl tools/release tools/monitoring

.PHONY: test-unit
test-unit: ## Unit tests, no control plane: library, sidecar, rbac, bench tools, image tool, ctrl
	@set -e; for m in $(UNIT_MODULES); do \
		echo "cd $$m && $(GO) test -race -count=1 -timeout=$(UNIT_TIMEOUT) ./..."; \
		(cd $$m && $(GO) test -race -count=1 -timeout=$(UNIT_TIMEOUT) ./...); \
	done

.PHONY: test-sim
test-sim: ## Simulator tier, no control plane: 60 s of fresh seeds (30 s general, 30 s stale-coordinator shard scenario), the three injected bugs found, the corpus of seeds that once failed
	cd test && $(GO) test -race -count=1 -timeout=30m -run 'TestSimRandomSeeds|TestSimShardSeeds|TestSimFindsInjectedBugs|TestSimRegressionCorpus' ./sim/

.PHONY: test-integration
test-integration: controlplane ## The harness and the library against a real kube-apiserver + etcd, and deploy/ (dry runs, admission policy, FlowSchema)
	cd test && $(GO) test -race -count=1 -timeout=$(INTEGRATION_TIMEOUT) ./controlplane/... ./integration/... ./election/... ./handoff/... ./shard/... ./internal/... ./cmd/... ./deploy/...

# E2E_PARALLEL is go test -parallel for the e2e tier: its parallel tests
# (test/e2e/main_test.go says which, and why they are isolated) mostly
# wait out leases, re-checks and alert windows, so more of them than the
# default (GOMAXPROCS, 2 here) share the cores without loading them.
E2E_PARALLEL ?= 4

.PHONY: test-e2e
test-e2e: controlplane ## The sidecar, kubectl-elector and the ctrl example operator as processes, with real ServiceAccount tokens
	cd test && ELECTOR_PROMETHEUS=$(PROMETHEUS) $(GO) test -race -count=1 -parallel=$(E2E_PARALLEL) -timeout=$(E2E_TIMEOUT) ./e2e/... ./kubectlelector/...

.PHONY: test-chaos
test-chaos: controlplane ## Short seeded fault schedules and the overlap checker (the long run is make chaos)
	cd test && $(GO) test -race -count=1 -timeout=$(CHAOS_TIMEOUT) ./chaos/...

# STRESS_COUNT is how many times make stress runs each unit test.
STRESS_COUNT ?= 10

.PHONY: stress
stress: ## Unit tests with -race -count=STRESS_COUNT (10) -shuffle=on while busy loops load every core (not in make test); log in _output/stress.log
	UNIT_MODULES="$(UNIT_MODULES)" GO=$(GO) hack/stress.sh $(STRESS_COUNT)

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
MODULES := . test bench test/leaderelector05 tools/image tools/release cmd/kubectl-elector ctrl tools/monitoring
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

# The krew the release rehearsal installs the plugin with. About 3 minutes
# on two busy cores with an empty module cache.
KREW_VERSION := v0.4.3
KREW := $(ELECTOR_TOOLS_DIR)/krew-$(KREW_VERSION)

$(KREW):
	$(call go-install,$@,sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION))

# The generator of the software bill of materials (CycloneDX) of the
# binaries that the release rehearsal checks. About 9 minutes on two busy
# cores with an empty module cache.
CYCLONEDX_GOMOD_VERSION := v1.10.0
CYCLONEDX_GOMOD := $(ELECTOR_TOOLS_DIR)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)

$(CYCLONEDX_GOMOD):
	$(call go-install,$@,github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_GOMOD_VERSION))

GOVULNCHECK_VERSION := v1.9.0
GOVULNCHECK := $(ELECTOR_TOOLS_DIR)/govulncheck-$(GOVULNCHECK_VERSION)

$(GOVULNCHECK):
	$(call go-install,$@,golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION))

.PHONY: vulncheck
vulncheck: $(GOVULNCHECK) ## govulncheck in every module (needs the vulnerability database at vuln.go.dev: CI's vulncheck job)
	@status=0; \
	for m in $(MODULES); do \
		echo "govulncheck: $$m"; \
		(cd $$m && $(GOVULNCHECK) ./...) || status=1; \
	done; \
	exit $$status

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
tools: $(GOLANGCI_LINT) $(ACTIONLINT) $(GORELEASER) $(KREW) $(CYCLONEDX_GOMOD) $(PROMTOOL) ## Build the pinned golangci-lint, actionlint, goreleaser, krew, cyclonedx-gomod and promtool (first run only)

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

# make release-prep needs VERSION on the command line (not git describe's).
ifneq ($(filter release-prep,$(MAKECMDGOALS)),)
ifneq ($(origin VERSION),command line)
$(error make release-prep needs VERSION, the version to cut: make release-prep VERSION=v0.1.0)
endif
endif
# The date of the release in CHANGELOG.md (today, UTC, unless set).
RELEASE_DATE ?= $(shell date -u +%Y-%m-%d)

.PHONY: release-prep
release-prep: ## Cut VERSION (make release-prep VERSION=v0.1.0): stamp CHANGELOG.md, nested modules on the released root with no replace, tag every module (vX, ctrl/vX, cmd/kubectl-elector/vX), then replace back for development
	cd tools/release && GOWORK=off $(GO) run . prep --repo=$(CURDIR) --version='$(VERSION)' --date='$(RELEASE_DATE)'

# The version the rehearsal cuts in its temporary clone.
REHEARSAL_VERSION ?= v0.1.0

.PHONY: release-rehearsal
release-rehearsal: $(KREW) $(CYCLONEDX_GOMOD) ## Rehearse the release of HEAD in a temporary clone: release-prep, a file module proxy of the tags, go get / go install / SBOMs / every platform's krew archive / krew install from outside, the image by digest in an in-process registry with its SBOM referrer and signature, the examples pinned to it (hack/release-rehearsal.sh)
	VERSION=$(REHEARSAL_VERSION) KREW=$(KREW) CYCLONEDX_GOMOD=$(CYCLONEDX_GOMOD) GO=$(GO) hack/release-rehearsal.sh

.PHONY: bench
bench: controlplane ## Benchmark elector against client-go; writes BENCHMARKS.md (~20 min; BENCHFLAGS=--quick: ~5 min smoke test)
	cd bench && $(GO) run ./cmd/bench --out ../BENCHMARKS.md $(BENCHFLAGS)

.PHONY: bench-overload
bench-overload: controlplane ## Only the overload comparison (renewals under a tenant's flood, with and without deploy/cluster/priority, ~5 min); replaces its section of BENCHMARKS.md
	cd bench && $(GO) run ./cmd/bench --only overload --splice --out ../BENCHMARKS.md $(BENCHFLAGS)

.PHONY: bench-sharded
bench-sharded: controlplane ## Only the sharded-controllers section of BENCHMARKS.md (10,000 ConfigMaps, ~4 min; BENCHFLAGS=--quick: 2,000)
	cd bench && $(GO) run ./cmd/bench --out ../BENCHMARKS.md --only sharded-controllers --splice $(BENCHFLAGS)

# N is the number of schedules `make chaos` runs.
N ?= 200

.PHONY: chaos
chaos: controlplane ## Long chaos run: N seeded fault schedules (default 200, about 75 min), then 10 sharded ones (about 12 min); prints the table of CHAOS.md
	cd test && $(GO) run ./chaos/cmd/chaos -n $(N)

# SEEDS is the number of fresh seeds `make sim` runs.
SEEDS ?= 10000

.PHONY: sim
sim: ## Deterministic simulation of the whole system in virtual time: SEEDS fresh seeds (default 10000, no -race); prints seeds/minute and every violation with its seed and trace
	cd test && $(GO) test -count=1 -timeout=0 -run 'TestSimRandomSeeds$$' ./sim/ -sim.seeds=$(SEEDS) -v
