#!/usr/bin/env bash
# bench/size-without.sh: what the release build would weigh without the
# unused parts that go-micro, gin and bleve link (docs/benchmarks.md §16).
# It builds against patched copies of those three modules in a temporary
# directory, through a temporary -modfile. The work tree, go.mod and the
# module cache are not touched. This is a measurement only: usersvc ships
# none of these patches, and the binaries built here are never run.
#
#   bench/size-without.sh      prints one row per step, each step adding a patch
#
# The patches:
#   go-micro  client/grpc and server/grpc no longer import cmd to add
#             themselves to its tables (and with cmd go every plugin)
#   gin       no (*Engine).RunQUIC, and so no quic-go
#   bleve     scorch registers only zapx v17, its current segment format
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
modcache=$(go env GOMODCACHE)

# copy MODULE DIR: a writable copy of the version go.mod selects.
copy() {
  local v
  v=$(go list -m -f '{{.Version}}' "$1")
  go mod download "$1@$v"
  cp -r "$modcache/$1@$v" "$tmp/$2"
  chmod -R u+w "$tmp/$2"
}

copy go-micro.dev/v6 gomicro
for f in client/grpc/grpc.go server/grpc/grpc.go; do
  sed -i '/"go-micro.dev\/v6\/cmd"/d; /cmd\.Default\(Clients\|Servers\)\[/d' "$tmp/gomicro/$f"
done
copy github.com/gin-gonic/gin gin
awk '/^\/\/ RunQUIC attaches/ {skip = 1} skip && /^}/ {skip = 0; next} !skip' "$tmp/gin/gin.go" |
  sed '/"github.com\/quic-go\/quic-go\/http3"/d' >"$tmp/gin.go"
mv "$tmp/gin.go" "$tmp/gin/gin.go"
copy github.com/blevesearch/bleve/v2 bleve
sed -i '/zapv1[1-6]/d' "$tmp/bleve/index/scorch/segment_plugin.go"

# build NAME REPLACES...: the release build (Makefile RELEASE_FLAGS, static)
# with go.mod plus the given replace lines; prints its size.
build() {
  local name=$1
  shift
  cp go.mod "$tmp/go.mod"
  cp go.sum "$tmp/go.sum"
  for r in "$@"; do echo "replace $r" >>"$tmp/go.mod"; done
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -modfile="$tmp/go.mod" -trimpath -tags nomsgpack -ldflags='-s -w' \
    -o "$tmp/usersvc" ./cmd/usersvc
  printf '| %s | %.2f MB |\n' "$name" "$(stat -c %s "$tmp/usersvc")e-6"
}

echo '| patched | release build |'
echo '|---|---:|'
micro="go-micro.dev/v6 => $tmp/gomicro"
gin="github.com/gin-gonic/gin => $tmp/gin"
bleve="github.com/blevesearch/bleve/v2 => $tmp/bleve"
build "none"
build "go-micro without cmd" "$micro"
build "+ gin without RunQUIC" "$micro" "$gin"
build "+ bleve with zapx v17 only" "$micro" "$gin" "$bleve"
