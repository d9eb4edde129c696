# Tools are built from versions pinned in go.mod (protoc-gen-go, protoc-gen-micro)
# and tools/go.mod (staticcheck), so everything works from the Go module proxy.
# protoc itself is Debian's (protobuf-compiler, libprotobuf-dev for the
# well-known types), installed by scripts/services.sh: prebuilt, where buf took
# most of a cold test run to build for checks we did not use.
BIN := $(CURDIR)/bin

.PHONY: run test tools generate check-generate build bench load

run: ## run the whole platform in one process on the embedded defaults
	go run ./cmd/usersvc dev

test: ## every test, provisioning MariaDB (and stopping what it started)
	scripts/test.sh

build:
	go build -o $(BIN)/usersvc ./cmd/usersvc

tools: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-micro $(BIN)/staticcheck

$(BIN)/protoc-gen-go: go.mod
	go build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go
$(BIN)/protoc-gen-micro: go.mod
	go build -o $@ go-micro.dev/v6/cmd/protoc-gen-micro
$(BIN)/staticcheck: tools/go.mod
	cd tools && go build -o $@ honnef.co/go/tools/cmd/staticcheck

PROTOC = protoc -I api -I /usr/include \
	--plugin=protoc-gen-go=$(BIN)/protoc-gen-go --plugin=protoc-gen-micro=$(BIN)/protoc-gen-micro
PROTOS = $(shell find api -name '*.proto')

generate: tools ## regenerate api/ from the .proto files
	$(PROTOC) --go_out=api --go_opt=paths=source_relative \
		--micro_out=api --micro_opt=paths=source_relative $(PROTOS)

check-generate: tools ## fail when committed generated code differs from a fresh generation
	@gen=$$(mktemp -d) && trap 'rm -rf "$$gen"' EXIT && \
	$(PROTOC) --go_out=$$gen --go_opt=paths=source_relative \
		--micro_out=$$gen --micro_opt=paths=source_relative $(PROTOS) && \
	for f in $$(cd $$gen && find . -name '*.go'); do \
		cmp -s $$gen/$$f api/$$f || { echo "api/$$f is stale: run make generate"; exit 1; }; done
	@echo "generated code is current"

bench: ## Go benchmarks
	go test -run='^$$' -bench=. -benchmem ./...

load: ## load through the gateway, embedded then distributed (needs MariaDB; see docs/benchmarks.md)
	go run ./bench/load -mode=dev
	go run ./bench/load -mode=distributed
