# The project's commands. `make test` is what CI runs (.ci/run).
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/linkerd-go/linkerd/pkg/version.Version=$(VERSION)

.PHONY: build images test lint demo bench proto web

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

# Every test: unit, fuzz seed corpora, and the network-namespace integration
# suite (needs root, iptables and iproute2; CI provides them).
test: lint
	$(GO) test -count=1 -timeout 20m ./...

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
