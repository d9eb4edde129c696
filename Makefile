# Tools are built from versions pinned in go.mod (protoc-gen-go, protoc-gen-micro)
# and tools/go.mod (buf, staticcheck), so everything works from the Go module proxy.
BIN := $(CURDIR)/bin

.PHONY: run test tools generate check-generate build bench load

run: ## run the whole platform in one process on the embedded defaults
	go run ./cmd/usersvc dev

test: ## every test, provisioning MariaDB (and stopping what it started)
	scripts/test.sh

build:
	go build -o $(BIN)/usersvc ./cmd/usersvc

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-micro $(BIN)/staticcheck

$(BIN)/protoc-gen-go: go.mod
	go build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go
$(BIN)/protoc-gen-micro: go.mod
	go build -o $@ go-micro.dev/v6/cmd/protoc-gen-micro
$(BIN)/buf: tools/go.mod
	cd tools && go build -o $@ github.com/bufbuild/buf/cmd/buf
$(BIN)/staticcheck: tools/go.mod
	cd tools && go build -o $@ honnef.co/go/tools/cmd/staticcheck

generate: tools ## regenerate api/ from the .proto files
	$(BIN)/buf generate

check-generate: tools ## fail when committed generated code differs from a fresh generation
	@rm -rf $(CURDIR)/tmp/gen && mkdir -p $(CURDIR)/tmp/gen
	@$(BIN)/buf generate --template '{"version":"v2","plugins":[{"local":"$(BIN)/protoc-gen-go","out":"tmp/gen","opt":"paths=source_relative"},{"local":"$(BIN)/protoc-gen-micro","out":"tmp/gen","opt":"paths=source_relative"}]}'
	@for f in $$(cd tmp/gen && find . -name '*.go'); do \
		cmp -s tmp/gen/$$f api/$$f || { echo "api/$$f is stale: run make generate"; exit 1; }; done
	@rm -rf $(CURDIR)/tmp/gen
	@echo "generated code is current"

bench: ## Go benchmarks
	go test -run='^$$' -bench=. -benchmem ./...

load: ## load through the gateway, embedded then distributed (needs MariaDB; see docs/benchmarks.md)
	go run ./bench/load -mode=dev
	go run ./bench/load -mode=distributed
