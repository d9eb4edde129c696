#!/usr/bin/env bash
# The whole test suite, on a fresh machine: provisions the servers (see
# scripts/services.sh), checks formatting, generated code, vet and
# staticcheck, runs every test with the race detector against the real
# servers, runs each fuzz target briefly, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
export USERSVC_STARTED_FILE=$(mktemp -t usersvc-started.XXXXXX)
trap 'scripts/services.sh stop' EXIT

step() { printf '\n== %s\n' "$*"; }

step "provision servers"
scripts/services.sh start
export USERSVC_TEST_MYSQL_DSN='usersvc:usersvc@tcp(127.0.0.1:3306)/'
export USERSVC_TEST_REDIS_URL='redis://127.0.0.1:6379/0'
export USERSVC_TEST_RABBITMQ_URL='amqp://guest:guest@127.0.0.1:5672/'
export USERSVC_TEST_RABBITMQ_CTL=1
export USERSVC_TEST_REQUIRE_ALL=1
# Debian's nginx, run by the edge tests (e2e/nginx_test.go) with the shipped
# deploy/nginx configuration on private loopback ports.
export USERSVC_TEST_NGINX=$(command -v nginx || echo /usr/sbin/nginx)

step "tools"
make -s tools

step "observability servers (built once, cached: scripts/opstools.sh)"
USERSVC_TEST_JAEGER_BIN=$(scripts/opstools.sh jaeger)
USERSVC_TEST_VICTORIALOGS_BIN=$(scripts/opstools.sh victoria-logs)
USERSVC_TEST_OTELCOL_BIN=$(scripts/opstools.sh otelcol)
USERSVC_TEST_PROMETHEUS_BIN=$(command -v prometheus)
USERSVC_TEST_ALERTMANAGER_BIN=$(command -v prometheus-alertmanager || command -v alertmanager)
export USERSVC_TEST_JAEGER_BIN USERSVC_TEST_VICTORIALOGS_BIN USERSVC_TEST_OTELCOL_BIN USERSVC_TEST_PROMETHEUS_BIN USERSVC_TEST_ALERTMANAGER_BIN

step "generated code is current"
make -s check-generate

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^api/.*\.pb.*\.go$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi

step "prometheus config, rules and rule unit tests (promtool, amtool); log shipper config (otelcol validate)"
# prometheus-k8s.yml is checked by deploy/obstest instead: Debian's
# Prometheus is built without Kubernetes service discovery.
(cd deploy/prometheus && promtool check config --syntax-only prometheus.yml \
  && promtool check rules rules/*.yml && promtool test rules tests/*.yml \
  && amtool check-config alertmanager.yml)
USERSVC_LOG_FILES='/var/log/usersvc/*.log' LOGS_OTLP_ENDPOINT=http://127.0.0.1:9428/insert/opentelemetry/v1/logs \
  "$USERSVC_TEST_OTELCOL_BIN" validate --config=file:deploy/otelcol/logs.yaml

step "go vet"
go vet ./...

step "staticcheck"
bin/staticcheck ./...

step "go test -race"
# Packages whose tests stop and start the shared RabbitMQ or Redis, or run
# whole process clusters, go one at a time after the rest, so an outage test
# never hits another package's test.
serial='/e2e$|/events/rabbitmq$|/cache$|/ratelimit$|/app$'
parallel_pkgs=$(go list ./... | grep -Ev "$serial")
serial_pkgs=$(go list ./... | grep -E "$serial" || true)
{
  go test -race -count=1 -timeout 30m $parallel_pkgs 2>&1
  [ -z "$serial_pkgs" ] || go test -race -count=1 -timeout 30m -p 1 $serial_pkgs 2>&1
} | tee /tmp/usersvc-test.log | grep -v '^ok\|no test files' || true
if grep -q '^FAIL\|^--- FAIL\|^panic:' /tmp/usersvc-test.log; then
  echo "tests failed"; grep '^FAIL\|^--- FAIL' /tmp/usersvc-test.log; exit 1
fi
grep '^ok' /tmp/usersvc-test.log

step "deployment checks (deploy/deploytest: Dockerfile, compose, Kubernetes on a real kube-apiserver)"
# A module of its own (buildkit, compose-go and k8s.io stay out of the
# service's go.mod). kube-apiserver is built once per version into a cache
# outside the work tree; the first build takes minutes.
USERSVC_TEST_KUBE_APISERVER=$(scripts/opstools.sh kube-apiserver)
USERSVC_TEST_KUBECTL=$(scripts/opstools.sh kubectl) # kustomize included, same version
export USERSVC_TEST_KUBE_APISERVER USERSVC_TEST_KUBECTL
(
  cd deploy/deploytest
  go vet ./...
  ../../bin/staticcheck ./...
  go test -count=1 -timeout 40m ./...
)

step "dashboard checks (deploy/obstest: Grafana SDK strict decoding, PromQL parser)"
# A module of its own too: the Grafana SDK and Prometheus stay out of the
# service's go.mod. The panel queries run against a real Prometheus in e2e.
(
  cd deploy/obstest
  go vet ./...
  ../../bin/staticcheck ./...
  go test -count=1 ./...
)

step "fuzz (${FUZZTIME} each)"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //'); do
    echo "fuzz $pkg $fz"
    go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/usersvc-fuzz.log 2>&1 || { cat /tmp/usersvc-fuzz.log; exit 1; }
  done
done

passed=$(grep -c '^ok' /tmp/usersvc-test.log || true)
echo
echo "go test: $passed packages passed, 0 failed"
