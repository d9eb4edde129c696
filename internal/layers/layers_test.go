// Package layers checks that dependencies point inward, as docs/design.md's
// layout table says: a rule that only a reviewer enforces erodes.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/usersvc/usersvc/"

// rules: a package (with everything it links) must not reach any of the
// listed import-path prefixes.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"internal/user", []string{"go-micro.dev", "github.com/gin-gonic", "github.com/go-sql-driver", "modernc.org/sqlite", "github.com/redis",
		mod + "internal/store", mod + "internal/rpc", mod + "internal/httpapi"},
		"the domain imports no framework, driver or edge"},
	// The flows: each is built on the core's vocabulary and its own small
	// ports; none imports another (they meet through the interfaces they
	// declare, wired in internal/user/flows), so a new flow — a second
	// factor, an audit trail — is a package of its own, not a branch in
	// someone else's.
	{"internal/user/profile", flowForbidden("profile"), "a flow imports no other flow, framework, driver or edge"},
	{"internal/user/session", flowForbidden("session"), "a flow imports no other flow, framework, driver or edge"},
	{"internal/user/recovery", flowForbidden("recovery"), "a flow imports no other flow, framework, driver or edge"},
	{"internal/user/serviceaccount", flowForbidden("serviceaccount"), "a flow imports no other flow, framework, driver or edge"},
	{"internal/user/mfa", flowForbidden("mfa"), "a flow imports no other flow, framework, driver or edge"},
	{"internal/factor", pureLibrary, "the second factors' pieces are a library: no framework, driver or edge"},
	{"internal/seal", pureLibrary, "sealing is a library: no framework, driver or edge"},
	{"internal/events", []string{mod + "internal/store"},
		"the store hands out events messages; the relay does not know the store"},
	{"internal/search", []string{mod + "internal/worker", mod + "internal/store"},
		"the search port and its adapter to the domain live in search"},
	{"internal/revocation", []string{mod + "internal/store", mod + "internal/cache"},
		"the denylist is its own package, implemented by the store"},
	{"internal/cache", []string{mod + "internal/revocation"},
		"the denylist is not part of the user cache"},
	{"internal/httpapi", []string{"go-micro.dev", "go.etcd.io", "github.com/rabbitmq"},
		"go-micro stays inside internal/rpc"},
	{"internal/httpapi", []string{mod + "internal/user/"},
		"the API reaches the flows through the service (rpc.Users), never in process"},
	{"internal/pages", []string{"go-micro.dev", "go.etcd.io", "github.com/rabbitmq", "github.com/gin-gonic",
		mod + "internal/rpc", mod + "internal/httpapi", mod + "internal/store", mod + "internal/user/"},
		"the pages are plain net/http over the Users interface; the API mounts them"},
	// Exporters are wiring (app.SetupTracing): the shared helpers and the
	// HTTP edges link no OTLP exporter and, with it, no gRPC (66 gRPC and 23
	// OTLP packages each before).
	{"internal/telemetry", edgeNoExporters, "exporter setup is wiring (app.SetupTracing)"},
	{"internal/httpapi", edgeNoExporters, "an HTTP edge links no exporter or gRPC"},
	{"internal/pages", edgeNoExporters, "an HTTP edge links no exporter or gRPC"},
	{"internal/gateway", edgeNoExporters, "an HTTP edge links no exporter or gRPC"},
	// The SDK is imported by other services: it links none of the
	// service's server dependencies and nothing under internal/ (which
	// another module could not import anyway).
	{"sdk/auth", append([]string{"github.com/", "go-micro.dev", "go.opentelemetry.io", "google.golang.org", mod + "internal"}, sdkServerDeps...),
		"the verifier is standard library only"},
	{"sdk/auth/authgin", append([]string{"go-micro.dev", mod + "internal"}, sdkServerDeps[:len(sdkServerDeps)-1]...),
		"gin middleware: gin and the verifier, nothing else of ours"},
	{"sdk/auth/authmicro", append([]string{"github.com/gin-gonic", mod + "internal"}, sdkServerDeps...),
		"go-micro middleware: no gin"},
	{"sdk/revocations", append([]string{"github.com/gin-gonic", "go-micro.dev", mod + "internal"}, sdkServerDeps...),
		"the revocation feed: AMQP and the verifier"},
	{"sdk/userclient", append([]string{"github.com/gin-gonic", mod + "internal"}, sdkServerDeps...),
		"the typed client: go-micro and the public API package"},
}

// sdkServerDeps are the user service's server-side dependencies, which no
// SDK package may link (gin last: authgin may).
var sdkServerDeps = []string{"modernc.org/sqlite", "github.com/go-sql-driver", "github.com/blevesearch", "github.com/redis",
	"github.com/prometheus/client_golang/prometheus/promhttp", "go.opentelemetry.io/otel/exporters", "github.com/gin-gonic"}

// flows are the domain's flow packages under internal/user.
var flows = []string{"profile", "session", "recovery", "serviceaccount", "mfa"}

// flowForbidden is what the flow self may not reach: the other flows, their
// assembly, and whatever the core may not.
func flowForbidden(self string) []string {
	out := []string{mod + "internal/user/flows", "go-micro.dev", "github.com/gin-gonic", "github.com/go-sql-driver",
		"modernc.org/sqlite", "github.com/redis", mod + "internal/store", mod + "internal/rpc", mod + "internal/httpapi"}
	for _, f := range flows {
		if f != self {
			out = append(out, mod+"internal/user/"+f)
		}
	}
	return out
}

// pureLibrary is what a library of the domain's (token, password, factor,
// seal) never links.
var pureLibrary = []string{"go-micro.dev", "github.com/gin-gonic", "github.com/go-sql-driver", "modernc.org/sqlite",
	"github.com/redis", mod + "internal/user", mod + "internal/store", mod + "internal/rpc", mod + "internal/httpapi"}

var edgeNoExporters = []string{"go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/otel/sdk", "google.golang.org/grpc"}

func TestDependenciesPointInward(t *testing.T) {
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", mod+r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, mod+"sdk/") || strings.HasPrefix(dep, mod+"api/") {
				continue // the SDK's own packages and the public contract are allowed to every SDK package
			}
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s: %s", r.pkg, dep, r.why)
				}
			}
		}
	}
}

// TestEveryPackageDocumented: every package of the module has a package
// comment go doc shows. A blank line between the comment and the package
// clause detaches it silently (internal/cache's did).
func TestEveryPackageDocumented(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{len .GoFiles}}\t{{.Doc}}", mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) == 3 && f[1] != "0" && strings.TrimSpace(f[2]) == "" { // a package of tests only has none to show
			t.Errorf("%s: no package comment (or one detached from the package clause)", f[0])
		}
	}
}
