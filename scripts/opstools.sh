#!/usr/bin/env bash
# Builds the tools the build and the end-to-end suites run for real (Jaeger,
# VictoriaLogs, kube-apiserver; staticcheck and the protoc plugins) from the
# Go module proxy, once per version, into a cache outside the work tree;
# prints the binary's path.
#
#   scripts/opstools.sh jaeger|victoria-logs|otelcol|kube-apiserver|kubectl|staticcheck|protoc-gen-go|protoc-gen-micro|debian-rootfs|docker-compose
#   scripts/opstools.sh kubelet|kube-scheduler|kube-controller-manager|kube-proxy|coredns
#
# docker-compose is the Compose v2 CLI plugin, run standalone against
# podman's Docker API socket by the compose test (TestComposeUp): Debian's
# podman-compose 1.0.3 has no profiles, no depends_on conditions and no
# fixed addresses, all of which deploy/compose/compose.yaml uses.
#
# The last five make the real single-node cluster of the Kubernetes test: the
# Kubernetes commands come from the same wrapper module as kube-apiserver, so
# they share its Go build cache and each costs only its own packages; coredns
# is a small main (deploy/k8s/test/coredns) with only the plugins the cluster
# DNS needs.
#
# debian-rootfs is not a binary: it is a tarball of a minimal Debian root
# filesystem (debootstrap --variant=minbase from the mirror apt uses), which
# the image test imports as the local stand-in of the Dockerfile's base
# images (no image registry is reachable here).
#
# staticcheck and the protoc plugins take their versions from tools/go.mod and
# go.mod; staticcheck's cache key also holds the Go version, because it must
# be built by the toolchain whose code it checks.
#
# The cache is ${USERSVC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersvc-tools}.
# A build goes to a temporary name and is renamed into place, so an
# interrupted build never leaves a half-written binary behind.
set -euo pipefail
cd "$(dirname "$0")/.."

JAEGER_VERSION=v1.76.0
VICTORIALOGS_VERSION=v1.52.1
KUBERNETES_VERSION=v1.37.2
OTELCOL_VERSION=v0.140.0
DEBIAN_SUITE=bookworm
COMPOSE_VERSION=v2.40.3

CACHE=${USERSVC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersvc-tools}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

log() { printf 'opstools: %s\n' "$*" >&2; }

# build_in_module OUT MODULE@VERSION PACKAGE: go build inside the module's own
# copy, because these modules carry replace directives `go install` refuses.
build_in_module() {
  local out=$1 modver=$2 pkg=$3 dir
  dir=$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "cannot download $modver"; return 1; }
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.partial" "$pkg")
  mv "$out.partial" "$out"
}

# build_kubernetes OUT PACKAGE: a k8s.io/kubernetes command (kube-apiserver,
# kubectl) from the wrapper module that pins Kubernetes and its staging modules.
build_kubernetes() {
  local out=$1 pkg=$2 work
  work=$(mktemp -d)
  # The RETURN trap is not local to the function: it clears itself, or it
  # would fire again when the caller returns, with $work out of scope.
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"; trap - RETURN' RETURN
  cp deploy/k8s/test/kube-apiserver.go.mod "$work/go.mod"
  printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n' >"$work/tools.go"
  (cd "$work" && go mod download k8s.io/kubernetes && go build -trimpath -ldflags "-s -w" -o "$out.partial" "$pkg")
  mv "$out.partial" "$out"
}

# build_otelcol OUT: the OpenTelemetry Collector's builder assembles the
# components of deploy/otelcol/builder.yaml (otlp and filelog receivers,
# batch, otlp/otlphttp/debug exporters) into one binary.
build_otelcol() {
  local out=$1 work
  work=$(mktemp -d)
  trap 'chmod -R u+w "${work:-}" 2>/dev/null; rm -rf "${work:-}"; trap - RETURN' RETURN
  GOBIN=$work go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION"
  sed "s#output_path: .*#output_path: $work/build#" deploy/otelcol/builder.yaml >"$work/builder.yaml"
  # The builder makes its scratch module in TMPDIR and leaves it there.
  TMPDIR=$work "$work/builder" --config="$work/builder.yaml" >&2
  mv "$work/build/otelcol-ops" "$out"
}

# build_debian_rootfs OUT: debootstrap a minbase Debian into a scratch
# directory and tar it. The mirror is the one apt already uses (first deb
# line of /etc/apt/sources.list*), so it works wherever apt-get does.
build_debian_rootfs() {
  local out=$1 work mirror
  mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    sed -n -e 's#^deb \(\[[^]]*\] \)\{0,1\}\(https\{0,1\}://[^ ]*/debian\)/\{0,1\} .*#\2#p' -e 's#^URIs: \(https\{0,1\}://[^ ]*/debian\)/\{0,1\}$#\1#p' | head -n 1)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  work=$(mktemp -d)
  trap 'rm -rf "${work:-}"; trap - RETURN' RETURN
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$work/rootfs" "$mirror" >&2
  tar -C "$work/rootfs" --numeric-owner -cf "$out.partial" .
  mv "$out.partial" "$out"
}

# build_compose OUT: docker compose v2 from its Go module, with the version
# it reports stamped in.
build_compose() {
  local out=$1 dir
  dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "cannot download docker compose $COMPOSE_VERSION"; return 1; }
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" -o "$out.partial" ./cmd)
  mv "$out.partial" "$out"
}

# modversion DIR MODULE: the version of MODULE that DIR's go.mod pins.
modversion() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

# build_pinned OUT DIR PACKAGE: go build PACKAGE at the version DIR's go.mod pins.
build_pinned() {
  (cd "$2" && go build -trimpath -ldflags "-s -w" -o "$1.partial" "$3")
  mv "$1.partial" "$1"
}

tool() {
  local name=$1 out
  case "$name" in
  staticcheck) out=$CACHE/staticcheck-$(modversion tools honnef.co/go/tools)-$(go env GOVERSION)/staticcheck ;;
  protoc-gen-go) out=$CACHE/protoc-gen-go-$(modversion . google.golang.org/protobuf)/protoc-gen-go ;;
  protoc-gen-micro) out=$CACHE/protoc-gen-micro-$(modversion . go-micro.dev/v6)/protoc-gen-micro ;;
  jaeger) out=$CACHE/jaeger-$JAEGER_VERSION/jaeger ;;
  victoria-logs) out=$CACHE/victoria-logs-$VICTORIALOGS_VERSION/victoria-logs ;;
  kube-apiserver) out=$CACHE/kube-apiserver-$KUBERNETES_VERSION/kube-apiserver ;;
  kubectl) out=$CACHE/kubectl-$KUBERNETES_VERSION/kubectl ;;
  kubelet | kube-scheduler | kube-controller-manager | kube-proxy) out=$CACHE/$name-$KUBERNETES_VERSION/$name ;;
  coredns) out=$CACHE/coredns-$(modversion deploy/k8s/test/coredns github.com/coredns/coredns)/coredns ;;
  otelcol) out=$CACHE/otelcol-$OTELCOL_VERSION/otelcol ;;
  debian-rootfs) out=$CACHE/debian-$DEBIAN_SUITE-minbase/rootfs.tar ;;
  docker-compose) out=$CACHE/docker-compose-$COMPOSE_VERSION/docker-compose ;;
  *) log "unknown tool $name"; return 2 ;;
  esac
  if [ ! -s "$out" ]; then # a build is renamed into place: there is all of it or nothing
    mkdir -p "$(dirname "$out")"
    log "building $name (once; cached in $(dirname "$out"))"
    local start=$SECONDS
    case "$name" in
    jaeger) build_in_module "$out" "github.com/jaegertracing/jaeger@$JAEGER_VERSION" ./cmd/jaeger ;;
    victoria-logs) build_in_module "$out" "github.com/VictoriaMetrics/VictoriaLogs@$VICTORIALOGS_VERSION" ./app/victoria-logs ;;
    kube-apiserver) build_kubernetes "$out" k8s.io/kubernetes/cmd/kube-apiserver ;;
    kubectl) build_kubernetes "$out" k8s.io/kubernetes/cmd/kubectl ;;
    kubelet | kube-scheduler | kube-controller-manager | kube-proxy) build_kubernetes "$out" "k8s.io/kubernetes/cmd/$name" ;;
    coredns) build_pinned "$out" deploy/k8s/test/coredns . ;;
    otelcol) build_otelcol "$out" ;;
    debian-rootfs) build_debian_rootfs "$out" ;;
    docker-compose) build_compose "$out" ;;
    staticcheck) build_pinned "$out" tools honnef.co/go/tools/cmd/staticcheck ;;
    protoc-gen-go) build_pinned "$out" . google.golang.org/protobuf/cmd/protoc-gen-go ;;
    protoc-gen-micro) build_pinned "$out" . go-micro.dev/v6/cmd/protoc-gen-micro ;;
    esac
    log "built $name in $((SECONDS - start))s"
  fi
  printf '%s\n' "$out"
}

for t in "$@"; do tool "$t"; done
