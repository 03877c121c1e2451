# The project's commands. `make test` is what CI runs (.ci/run).
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/linkerd-go/linkerd/pkg/version.Version=$(VERSION)

.PHONY: build test lint unit fuzz-seeds demo bench

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...

# Every test: unit, fuzz seed corpora, and the network-namespace integration
# suite (needs root, iptables and iproute2; CI provides them).
test: lint
	$(GO) test -count=1 -timeout 20m ./...

demo: build
	$(GO) build -o $(BIN)/testapp ./test/testapp
	./demo/two-pods.sh

bench: build
	$(GO) test ./bench -run TestCompare -v -timeout 60m -args -full
