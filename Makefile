# The project's commands. `make test` is what CI runs (.ci/run).
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/linkerd-go/linkerd/pkg/version.Version=$(VERSION)

.PHONY: build images test test-unit test-integration lint tidy-check demo bench proto web deepcopy

build: web
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The dashboard's front end (viz/web/app, TypeScript built by vite) into
# viz/web/dist, which the web server embeds. The build is committed, so
# without npm this keeps it (and `go build ./...` works on a fresh clone);
# the go test's -update records which sources it was built from.
WEB_APP := viz/web/app
WEB_SRC := $(shell find $(WEB_APP) -path $(WEB_APP)/node_modules -prune -o -type f -print 2>/dev/null)
web: viz/web/dist/index.html

viz/web/dist/index.html: $(WEB_SRC)
	@if command -v npm >/dev/null; then \
		set -e; cd $(WEB_APP); \
		if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi; \
		npm run build; cd $(CURDIR); \
		$(GO) test ./viz/web -run TestAssetsUpToDate -count=1 -update >/dev/null; \
	else \
		echo "npm not found: using the committed dashboard build in viz/web/dist"; \
	fi

# The container images (proxy, controller, demo, and the viz extension's
# prometheus, whose binary hack/build-k8s.sh builds) as docker-archive
# tarballs in bin/images, tagged with the CLI's version so `bin/linkerd
# install` and `bin/linkerd viz install` use them.
images:
	$(GO) run ./hack/images -o $(BIN)/images -tag $(VERSION) -images proxy,controller,demo,prometheus

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...
	golangci-lint run ./...

# go.mod and go.sum as `go mod tidy` leaves them.
tidy-check:
	$(GO) mod tidy -diff

# The tests: `make test` (what CI runs) = lint, tidy-check, the unit tests
# with the race detector, then the integration tests, then the unit tests'
# coverage. Integration packages are test/, bench/, internal/testnet and
# those whose tests use it (network namespaces, root, iptables, iproute2) or
# test/cluster (a real kube-apiserver or node; hack/build-k8s.sh builds its
# binaries): listed here from `go list`, so a new such test is never left out.
COVER := $(BIN)/cover.out
MODULE := github.com/linkerd-go/linkerd
INTEGRATION_PKGS = $(shell $(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
	awk '$$1 ~ /^$(subst /,\/,$(MODULE))\/(test|bench)(\/|$$)/ || $$1 ~ /\/internal\/testnet$$/ || / $(subst /,\/,$(MODULE))\/(internal\/testnet|test\/cluster)( |$$)/ {print $$1}')
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e '^$(MODULE)/test/' -e '^$(MODULE)/bench$$')

test: lint tidy-check test-unit test-integration
	@$(GO) tool cover -func=$(COVER) | awk 'END {print "coverage of the unit tests: " $$NF " of statements"}'

# The race detector runs over the packages with concurrency of their own
# (the proxy's 55 mutex/atomic/cond sites, the control plane, the libraries);
# the others (CLI, charts, viz, demo) run without it, which keeps CI's wall
# time down on 2 cores.
RACE_PKGS = $(filter $(MODULE)/proxy $(MODULE)/proxy/% $(MODULE)/pkg/% $(MODULE)/controller/% $(MODULE)/await $(MODULE)/proxyinit $(MODULE)/internal/%,$(UNIT_PKGS))

# Fast, no root: -short skips the integration tests (testkit.Integration).
test-unit:
	@mkdir -p $(BIN)
	$(GO) test -short -race -count=1 -timeout 20m -coverprofile=$(COVER).race $(RACE_PKGS)
	$(GO) test -short -covermode=atomic -count=1 -timeout 20m -coverprofile=$(COVER).rest $(filter-out $(RACE_PKGS),$(UNIT_PKGS))
	@{ cat $(COVER).race; tail -n +2 $(COVER).rest; } > $(COVER)

# Network namespaces (root) and Kubernetes.
test-integration:
	$(GO) test -count=1 -timeout 30m $(INTEGRATION_PKGS)

# The local mesh with the demo app, until Ctrl-C (needs root).
demo: build
	$(BIN)/linkerd demo

bench: build
	$(GO) test ./bench -run TestCompare -v -timeout 60m -args -full

# Regenerate the checked-in gRPC code (needs protoc, protoc-gen-go v1.36.12,
# protoc-gen-go-grpc v1.5.1 on PATH).
proto:
	protoc --proto_path=proto --go_out=. --go_opt=module=github.com/linkerd-go/linkerd \
		--go-grpc_out=. --go-grpc_opt=module=github.com/linkerd-go/linkerd \
		$$(cd proto && find . -name '*.proto' | sed 's|^\./||')

# Regenerate the API types' deep-copy methods (zz_generated.deepcopy.go,
# from the +k8s:deepcopy-gen tags) with Kubernetes' deepcopy-gen.
deepcopy:
	$(GO) run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.0 --go-header-file hack/boilerplate.go.txt \
		--output-file zz_generated.deepcopy.go ./pkg/apis/...
