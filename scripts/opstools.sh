#!/usr/bin/env bash
# Builds the operations tools the end-to-end suites run for real (Jaeger,
# VictoriaLogs, kube-apiserver) from the Go module proxy, once per version,
# into a cache outside the work tree; prints the binary's path.
#
#   scripts/opstools.sh jaeger|victoria-logs|kube-apiserver|kubectl|otelcol
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
  "$work/builder" --config="$work/builder.yaml" >&2
  mv "$work/build/otelcol-ops" "$out"
}

tool() {
  local name=$1 out
  case "$name" in
  jaeger) out=$CACHE/jaeger-$JAEGER_VERSION/jaeger ;;
  victoria-logs) out=$CACHE/victoria-logs-$VICTORIALOGS_VERSION/victoria-logs ;;
  kube-apiserver) out=$CACHE/kube-apiserver-$KUBERNETES_VERSION/kube-apiserver ;;
  otelcol) out=$CACHE/otelcol-$OTELCOL_VERSION/otelcol ;;
  kubectl) out=$CACHE/kubectl-$KUBERNETES_VERSION/kubectl ;;
  *) log "unknown tool $name"; return 2 ;;
  esac
  if [ ! -x "$out" ]; then
    mkdir -p "$(dirname "$out")"
    log "building $name (once; cached in $(dirname "$out"))"
    local start=$SECONDS
    case "$name" in
    jaeger) build_in_module "$out" "github.com/jaegertracing/jaeger@$JAEGER_VERSION" ./cmd/jaeger ;;
    victoria-logs) build_in_module "$out" "github.com/VictoriaMetrics/VictoriaLogs@$VICTORIALOGS_VERSION" ./app/victoria-logs ;;
    kube-apiserver) build_kubernetes "$out" k8s.io/kubernetes/cmd/kube-apiserver ;;
    kubectl) build_kubernetes "$out" k8s.io/kubernetes/cmd/kubectl ;;
    otelcol) build_otelcol "$out" ;;
    esac
    log "built $name in $((SECONDS - start))s"
  fi
  printf '%s\n' "$out"
}

for t in "$@"; do tool "$t"; done
