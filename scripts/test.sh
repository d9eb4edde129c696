#!/usr/bin/env bash
# The whole test suite, on a fresh machine: provisions the servers (see
# scripts/services.sh), checks formatting, generated code, vet and
# staticcheck, runs every test with the race detector against the real
# servers, runs each fuzz target briefly, prints every skipped test with its
# reason, and stops what it started.
#
# It never stops, reconfigures or fills the machine's shared servers: tests
# that take a server down do it to a TCP proxy in front of it
# (testenv.Proxy) or to a server of their own (a private redis-server or
# RabbitMQ node on free ports, in a temporary directory). Its own files live
# in one `mktemp -d` directory, removed at the end, so two runs at once do
# not clobber each other.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each fuzz target runs a number of inputs, not a time: a time-bounded
# run can fail with a bare "context deadline exceeded" as the time ends
# (go.dev/issue/75804, fixed in Go 1.27; our go1.26.8 has it), which is
# the fuzzing coordinator, never a finding. 20000 inputs take 0.3 s to a
# minute per target here, about the 80 s that 10 s each took.
FUZZTIME=${FUZZTIME:-20000x}
work=$(mktemp -d -t usersvc-test.XXXXXX)
export USERSVC_STARTED_FILE=$work/started
prebuild=
cleanup() {
  # Background tool builds still running (a run that failed early) stop
  # with it: they run in a session of their own, so the whole group goes.
  [ -z "$prebuild" ] || kill -- -"$prebuild" 2>/dev/null || true
  scripts/services.sh stop || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }

step "provision servers"
scripts/services.sh start
export USERSVC_TEST_MYSQL_DSN='usersvc_test:usersvc_test@tcp(127.0.0.1:3306)/'
export USERSVC_TEST_REDIS_URL='redis://127.0.0.1:6379/0'
export USERSVC_TEST_RABBITMQ_URL='amqp://guest:guest@127.0.0.1:5672/'
export USERSVC_TEST_REQUIRE_ALL=1
# Debian's nginx, run by the edge tests (e2e/nginx_test.go) with the shipped
# deploy/nginx configuration on private loopback ports.
export USERSVC_TEST_NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Debian's Chromium, driven headless by the browser tests of the pages
# (e2e/browser_test.go), which save a screenshot of each page here (not
# committed: artifacts/ is ignored) for a reviewer to look at.
export USERSVC_TEST_CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)
export USERSVC_TEST_SCREENSHOTS="$PWD/artifacts/screenshots"
rm -rf "$USERSVC_TEST_SCREENSHOTS"

step "tools (built once per version into ${USERSVC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersvc-tools})"
make -s tools

# The servers and tools the end-to-end and deployment tests run are built
# from the Go module proxy once per version (scripts/opstools.sh). On a
# cold machine that is most of the run (Jaeger alone ~20 min under load),
# so they build in the background while the checks and the unit and
# integration tests run, which need none of them; each later step waits
# for them first. Warm, every one is a cache hit and this costs nothing.
heavy_tools=(jaeger victoria-logs otelcol kube-apiserver kubectl kubelet kube-scheduler kube-controller-manager kube-proxy coredns debian-rootfs docker-compose)
step "tool builds in the background: ${heavy_tools[*]} (cached; log in $work/prebuild.log)"
setsid scripts/opstools.sh "${heavy_tools[@]}" >"$work/prebuild.log" 2>&1 &
prebuild=$!
# wait_tools waits for the background builds (once) and fails the run,
# showing their log, if one failed.
wait_tools() {
  [ -n "$prebuild" ] || return 0
  step "waiting for the background tool builds"
  if ! wait "$prebuild"; then
    cat "$work/prebuild.log"
    echo "background tool builds failed"
    exit 1
  fi
  grep '^opstools: built' "$work/prebuild.log" || true
  prebuild=
}

step "generated code is current"
make -s check-generate

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -Ev '^(api/.*\.pb.*\.go|third_party/.*)$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
make -s staticcheck

step "the example service (examples/orders: a module of its own, as another team's service; e2e builds and runs it)"
example_staticcheck=$(scripts/opstools.sh staticcheck)
(cd examples/orders && go vet ./... && "$example_staticcheck" ./...)

step "go test -race"
# Packages that run whole process clusters or private servers go one at a
# time after the rest, so the machine's two cores are not oversubscribed
# into timeouts.
serial='/e2e$|/events/rabbitmq$|/cache$|/ratelimit$|/app$'
parallel_pkgs=$(go list ./... | grep -Ev "$serial")
serial_pkgs=$(go list ./... | grep -E "$serial" || true)
json=$work/test.json
status=0
go test -json -race -count=1 -timeout 30m $parallel_pkgs | tee "$json" |
  jq -r --unbuffered 'select(.Test == null and (.Action == "pass" or .Action == "fail")) | "\(.Action)\t\(.Package)\t\(.Elapsed // 0)s"' || true

wait_tools
step "observability servers (built above, cached: scripts/opstools.sh)"
USERSVC_TEST_JAEGER_BIN=$(scripts/opstools.sh jaeger)
USERSVC_TEST_VICTORIALOGS_BIN=$(scripts/opstools.sh victoria-logs)
USERSVC_TEST_OTELCOL_BIN=$(scripts/opstools.sh otelcol)
USERSVC_TEST_PROMETHEUS_BIN=$(command -v prometheus)
USERSVC_TEST_ALERTMANAGER_BIN=$(command -v prometheus-alertmanager || command -v alertmanager)
export USERSVC_TEST_JAEGER_BIN USERSVC_TEST_VICTORIALOGS_BIN USERSVC_TEST_OTELCOL_BIN USERSVC_TEST_PROMETHEUS_BIN USERSVC_TEST_ALERTMANAGER_BIN

step "prometheus config, rules and rule unit tests (promtool, amtool); log shipper config (otelcol validate)"
# prometheus-k8s.yml is checked by deploy/obstest instead: Debian's
# Prometheus is built without Kubernetes service discovery.
(cd deploy/prometheus && promtool check config --syntax-only prometheus.yml \
  && promtool check rules rules/*.yml && promtool test rules tests/*.yml \
  && amtool check-config alertmanager.yml)
USERSVC_LOG_FILES='/var/log/usersvc/*.log' LOGS_OTLP_ENDPOINT=http://127.0.0.1:9428/insert/opentelemetry/v1/logs \
  "$USERSVC_TEST_OTELCOL_BIN" validate --config=file:deploy/otelcol/logs.yaml

step "go test -race (the packages that run process clusters or private servers, one at a time)"
if [ -n "$serial_pkgs" ]; then
  go test -json -race -count=1 -timeout 30m -p 1 $serial_pkgs | tee -a "$json" |
    jq -r --unbuffered 'select(.Test == null and (.Action == "pass" or .Action == "fail")) | "\(.Action)\t\(.Package)\t\(.Elapsed // 0)s"' || true
fi

step "deployment checks (deploy/deploytest: the image built and run with podman, compose, Kubernetes on a real single-node cluster)"
# A module of its own (buildkit, compose-go and k8s.io stay out of the
# service's go.mod). kube-apiserver is built once per version into a cache
# outside the work tree; the first build takes minutes.
# TestImage adds a debootstrap (once, cached) and, the first time, the
# build stage compiling every module in its container (~20 min under load;
# the caches are then kept), hence the longer timeout.
USERSVC_TEST_KUBE_APISERVER=$(scripts/opstools.sh kube-apiserver)
USERSVC_TEST_KUBECTL=$(scripts/opstools.sh kubectl) # kustomize included, same version
# The image test builds the Dockerfile with podman from local stand-ins of
# its base images, made from a debootstrapped Debian (cached, like the
# tools); the build's Go module and build caches are kept between runs.
USERSVC_TEST_DEBIAN_ROOTFS=$(scripts/opstools.sh debian-rootfs)
USERSVC_TEST_PODMAN=$(command -v podman)
USERSVC_TEST_IMAGE_BUILD_CACHE=${USERSVC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersvc-tools}/image-build-cache
# The compose test brings deploy/compose up with docker compose v2 (built
# once per version) against podman's API; its stand-in of the third-party
# images is kept as a tarball named by the hash of its inputs.
USERSVC_TEST_COMPOSE=$(scripts/opstools.sh docker-compose)
USERSVC_TEST_STANDIN_CACHE=${USERSVC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersvc-tools}/compose-standins
export USERSVC_TEST_KUBE_APISERVER USERSVC_TEST_KUBECTL USERSVC_TEST_DEBIAN_ROOTFS USERSVC_TEST_PODMAN USERSVC_TEST_IMAGE_BUILD_CACHE
export USERSVC_TEST_COMPOSE USERSVC_TEST_STANDIN_CACHE
# The Kubernetes node test (TestKubelet) runs a real single-node cluster:
# the rest of the control plane, the kubelet and kube-proxy from the same
# wrapper module as kube-apiserver (each adds only its own packages to the
# shared build cache), and CoreDNS with the plugins the cluster DNS needs.
USERSVC_TEST_KUBELET=$(scripts/opstools.sh kubelet)
USERSVC_TEST_KUBE_SCHEDULER=$(scripts/opstools.sh kube-scheduler)
USERSVC_TEST_KUBE_CONTROLLER_MANAGER=$(scripts/opstools.sh kube-controller-manager)
USERSVC_TEST_KUBE_PROXY=$(scripts/opstools.sh kube-proxy)
USERSVC_TEST_COREDNS=$(scripts/opstools.sh coredns)
export USERSVC_TEST_KUBELET USERSVC_TEST_KUBE_SCHEDULER USERSVC_TEST_KUBE_CONTROLLER_MANAGER USERSVC_TEST_KUBE_PROXY USERSVC_TEST_COREDNS
staticcheck=$(scripts/opstools.sh staticcheck)
(cd deploy/deploytest && go vet ./... && "$staticcheck" ./...)
(cd deploy/deploytest && go test -json -count=1 -timeout 60m ./... || true) |
  tee -a "$json" | jq -r --unbuffered 'select(.Test == null and (.Action == "pass" or .Action == "fail")) | "\(.Action)\t\(.Package)\t\(.Elapsed // 0)s"'

step "dashboard checks (deploy/obstest: Grafana SDK strict decoding, PromQL parser)"
# A module of its own too: the Grafana SDK and Prometheus stay out of the
# service's go.mod. The panel queries run against a real Prometheus in e2e.
(cd deploy/obstest && go vet ./... && "$staticcheck" ./...)
(cd deploy/obstest && go test -json -count=1 -timeout 10m ./... || true) |
  tee -a "$json" | jq -r --unbuffered 'select(.Test == null and (.Action == "pass" or .Action == "fail")) | "\(.Action)\t\(.Package)\t\(.Elapsed // 0)s"'

# Build failures and panics show as package output with no test.
failed=$(jq -r 'select(.Action == "fail" and .Test != null) | "\(.Package) \(.Test)"' "$json")
failed_pkgs=$(jq -r 'select(.Action == "fail" and .Test == null) | .Package' "$json")
if [ -n "$failed$failed_pkgs" ]; then
  echo; echo "== output of what failed"
  jq -rs '
    ([.[] | select(.Action == "fail") | [.Package, (.Test // "")]] ) as $f
    | .[] | select(.Action == "output" and ([.Package, (.Test // "")] as $k | $f | index([$k])) != null) | .Output' "$json" | tail -400
  echo; echo "FAILED tests:"; echo "${failed:-none}"
  echo "FAILED packages:"; echo "$failed_pkgs"
  status=1
fi

skips() {
  # Every skipped test with the reason it logged, so "passed" never hides
  # "not run".
  jq -rs '
    group_by([.Package, .Test]) | .[]
    | select(.[0].Test != null and any(.[]; .Action == "skip"))
    | "\(.[0].Package | sub("^github.com/usersvc/usersvc/"; "")) \(.[0].Test): "
      + ([.[] | select(.Action == "output") | .Output
          | select(test("^\\s*(=== |--- SKIP)") | not) | sub("^\\s+"; "") | rtrimstr("\n")] | join(" "))' "$json"
}

if [ "$status" = 0 ]; then
  step "fuzz (${FUZZTIME} each)"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //'); do
      echo "fuzz $pkg $fz"
      go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" "$pkg" >"$work/fuzz.log" 2>&1 || { cat "$work/fuzz.log"; status=1; break 2; }
    done
  done
fi

passed=$(jq -r 'select(.Test == null and .Action == "pass") | .Package' "$json" | wc -l)
nfailed=$(jq -r 'select(.Test == null and .Action == "fail") | .Package' "$json" | wc -l)
ntests=$(jq -r 'select(.Test != null and .Action == "pass") | .Test' "$json" | wc -l)
skipped=$(skips)
echo
echo "== skipped tests: $(printf '%s' "$skipped" | grep -c . || true)"
[ -z "$skipped" ] || printf '%s\n' "$skipped"
echo
echo "go test: $passed packages passed ($ntests tests and subtests), $nfailed failed; ${SECONDS}s in all"
[ ! -d "$USERSVC_TEST_SCREENSHOTS" ] || echo "screenshots of the pages: $USERSVC_TEST_SCREENSHOTS"
exit "$status"
