# Tools: protoc comes from Debian (protobuf-compiler + libprotobuf-dev, installed by
# scripts/services.sh); staticcheck and the protoc plugins are built once per
# pinned version (tools/go.mod, go.mod) into ~/.cache/usersvc-tools by
# scripts/opstools.sh, outside the work tree, so a second run skips them.
TOOLS := scripts/opstools.sh
PROTOS = $(shell cd api && find . -name '*.proto' | sort)

.PHONY: run test test-short tools generate check-generate build install bench load staticcheck

run: ## run the whole platform in one process on the embedded defaults
	go run ./cmd/usersvc dev

test: ## every test, provisioning MariaDB, Redis and RabbitMQ (and stopping what it started)
	scripts/test.sh

test-short: ## the inner loop: vet and the tests that need no server (no provisioning, no race detector, no fuzzing)
	go vet ./...
	go test -short -count=1 ./...

# The release build, as the Dockerfile's: static (CGO_ENABLED=0: the
# pure-Go SQLite and resolver, not this machine's libc, which a go build
# with a C compiler around would link), no file paths or symbol and DWARF
# tables in the binary (panics still print function names and lines), and
# gin without its MessagePack codec, which the API never speaks. 94.5 MB
# plain, 59.4 MB like this; what the rest is and what it would take to
# reach 50 MB: docs/benchmarks.md (go run ./bench/binsize). -buildvcs=auto
# records the commit (`usersvc version` shows it) whatever GOFLAGS says,
# and builds outside a checkout too.
RELEASE_FLAGS := -trimpath -buildvcs=auto -tags nomsgpack -ldflags='-s -w'

build: ## bin/usersvc (the release build: RELEASE_FLAGS)
	CGO_ENABLED=0 go build $(RELEASE_FLAGS) -o bin/usersvc ./cmd/usersvc

install: ## usersvc into $(go env GOPATH)/bin (the release build)
	CGO_ENABLED=0 go install $(RELEASE_FLAGS) ./cmd/usersvc

tools: ## build (once per version) staticcheck and the protoc plugins
	@$(TOOLS) staticcheck protoc-gen-go protoc-gen-micro >/dev/null

staticcheck:
	$$($(TOOLS) staticcheck) ./...

# protoc OUT: generate Go code for every .proto under api/ into OUT.
define protoc
	(cd api && protoc -I . -I /usr/include \
		--plugin=protoc-gen-go=$$(cd .. && $(TOOLS) protoc-gen-go) --go_out=$(1) --go_opt=paths=source_relative \
		--plugin=protoc-gen-micro=$$(cd .. && $(TOOLS) protoc-gen-micro) --micro_out=$(1) --micro_opt=paths=source_relative \
		$(PROTOS))
endef

generate: ## regenerate api/ from the .proto files
	$(call protoc,.)

check-generate: ## fail when committed generated code differs from a fresh generation
	@gen=$$(mktemp -d) && trap 'rm -rf "$$gen"' EXIT && \
	$(call protoc,$$gen) && \
	for f in $$(cd "$$gen" && find . -name '*.go'); do \
		cmp -s "$$gen/$$f" "api/$$f" || { echo "api/$$f is stale: run make generate"; exit 1; }; done && \
	echo "generated code is current"

bench: ## Go benchmarks
	go test -run='^$$' -bench=. -benchmem ./...

load: ## load through the gateway, embedded then distributed (needs MariaDB; see docs/benchmarks.md)
	go run ./bench/load -mode=dev
	go run ./bench/load -mode=distributed
