package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/testenv/observe"
)

// TestTraceAcrossProcesses runs the distributed deployment (gateway, API,
// service, worker on etcd, MariaDB, Redis and RabbitMQ) exporting to a real
// Jaeger, registers a user and resets the password through the gateway,
// and reads the reset request's trace back from Jaeger's query API: the
// client's trace continues through every process — gateway, user.api,
// user.service with its SQL and Redis calls, the outbox relay's publish,
// and the worker's consume and mail — each span the child of the one
// before, and no attribute carries the email, the password or the token.
// The client gets the trace id back in traceresponse, and the log lines of
// the request carry it with the request id.
func TestTraceAcrossProcesses(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	redisURL := testenv.RedisURL(t)
	dsn := testenv.MySQLDSN(t)
	jaeger := observe.StartJaeger(t)
	logStore := observe.StartVictoriaLogs(t)
	etcd := etcdtest.StartEtcd(t)
	ns := testNamespace(t, amqpURL)
	c := cluster.Start(t, cluster.Options{Services: 1, APIs: 1, Workers: 1, MySQLDSN: dsn, Etcd: etcd,
		Env: map[string]string{
			"USERSVC_RABBITMQ_URL":        amqpURL,
			"USERSVC_REDIS_URL":           redisURL,
			"USERSVC_NAMESPACE":           ns,
			"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.OTLPEndpoint,
			"OTEL_BSP_SCHEDULE_DELAY":     "100",
		}})
	// The processes' log files are shipped for real: the OTel Collector's
	// filelog receiver (deploy/otelcol/logs.yaml) into VictoriaLogs.
	observe.StartLogShipper(t, filepath.Join(filepath.Dir(c.Gateway().LogPath()), "*.log"),
		logStore.URL+"/insert/opentelemetry/v1/logs")
	cl := apiclient.New(t, c.GatewayURL())

	email := "traced-" + testenv.RandomHex(4) + "@example.com"
	reg := register(cl, email, "Traced")

	// The reset request, sent with a traceparent as nginx would pass one.
	traceID, clientSpan := randomHex(16), randomHex(8)
	hdr := apiclient.JSONHeader("")
	hdr.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	r := cl.Exchange(apiclient.Request{Method: "POST", Path: "/user/password", Header: hdr, Valid: true,
		Body: []byte(`{"email":"` + email + `"}`)}.WithID("trace-reset-1"))
	r.WantStatus(202)
	if got := r.Header.Get("traceresponse"); !strings.HasPrefix(got, "00-"+traceID+"-") || len(got) != 55 {
		t.Errorf("traceresponse %q, want the trace %s", got, traceID)
	}
	m := testenv.WaitMail(t, c.MailDir(), email, resetSubject, 20*time.Second)
	tok := mail.ResetToken(m.Text)
	cl.Do("PUT", "/user/password", "", map[string]any{"token": tok, "password": "a brand new passphrase"}).WantStatus(204)

	// Each process exports on its own schedule: the relay's publish span
	// ends at the broker's confirm, which can come after the worker has
	// already handled (and exported) the message.
	spans := waitTrace(t, jaeger, traceID, func(spans []observe.Span) bool {
		return hasSpan(spans, "user.worker", ns+".usersvc.mailer process") && hasSpan(spans, "user.worker", "INSERT processed_events") &&
			hasSpan(spans, "user.service", ns+".user.events publish")
	})
	checkParents(t, spans, clientSpan)
	// The chain a reset request takes, each span a descendant of the one
	// before it.
	chain := []struct{ service, op string }{
		{"gateway", "POST /user"},
		{"gateway", "HTTP POST"}, // the gateway's upstream attempt (otelhttp client)
		{"user.api", "POST /user/password"},
		{"user.api", "user.service.User.CreatePasswordReset"}, // go-micro client
		{"user.service", "user.service.User.CreatePasswordReset"},
		// The relay's publish is a child of the span that wrote the event
		// (the RPC's, whose INSERT outbox is checked below).
		{"user.service", ns + ".user.events publish"},
		{"user.worker", ns + ".usersvc.mailer process"},
		{"user.worker", "INSERT processed_events"},
	}
	byID := map[string]observe.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var prev, rpcServer *observe.Span
	for _, step := range chain {
		s := findSpan(spans, step.service, step.op, prev, byID)
		if s == nil {
			t.Errorf("no span %q of %s under %v in the trace:\n%s", step.op, step.service, prev, describe(spans))
			break
		}
		if step.service == "user.service" && rpcServer == nil {
			rpcServer = s
		}
		prev = s
	}
	if rpcServer != nil && findSpan(spans, "user.service", "INSERT outbox", rpcServer, byID) == nil {
		t.Errorf("no INSERT outbox under the RPC's span:\n%s", describe(spans))
	}
	for _, want := range []string{"gateway", "user.api", "user.service", "user.worker"} {
		if !hasService(spans, want) {
			t.Errorf("no span of %s", want)
		}
	}
	if !hasSpanPrefix(spans, "user.service", "SELECT ") {
		t.Errorf("no SQL SELECT span of user.service:\n%s", describe(spans))
	}
	checkNoSecrets(t, spans, email, userPassword, tok, "a brand new passphrase")

	// A sign-in's trace has the two steps traced by hand: the password
	// verification and the token issue, inside the service's RPC span.
	loginTrace := randomHex(16)
	hdr = apiclient.JSONHeader("")
	hdr.Set("traceparent", "00-"+loginTrace+"-"+randomHex(8)+"-01")
	cl.Exchange(apiclient.Request{Method: "POST", Path: "/user/token", Header: hdr, Valid: true,
		Body: []byte(`{"email":"` + email + `","password":"a brand new passphrase"}`)}).WantStatus(200)
	login := waitTrace(t, jaeger, loginTrace, func(spans []observe.Span) bool {
		return hasSpan(spans, "user.service", "token issue") && hasSpan(spans, "user.service", "password verify")
	})
	loginByID := map[string]observe.Span{}
	for _, s := range login {
		loginByID[s.SpanID] = s
	}
	if auth := findSpan(login, "user.service", "user.service.User.Auth", nil, loginByID); auth == nil ||
		findSpan(login, "user.service", "token issue", auth, loginByID) == nil ||
		findSpan(login, "user.service", "password verify", auth, loginByID) == nil {
		t.Errorf("sign-in trace lacks password verify and token issue under User.Auth:\n%s", describe(login))
	}
	checkNoSecrets(t, login, email, "a brand new passphrase")

	// The API's access-log line of the request has its trace and request ids.
	line := findLogLine(t, c.APIs()[0].LogPath(), func(m map[string]any) bool {
		return m["message"] == "http request" && m["transaction.id"] == "trace-reset-1"
	})
	if line == nil || line["trace.id"] != traceID || line["span.id"] == nil || line["service.name"] != "user.api" {
		t.Errorf("access log line %v: want trace.id %s", line, traceID)
	}
	mailLine := findLogLine(t, c.Workers()[0].LogPath(), func(m map[string]any) bool { return m["message"] == "reset mail sent" && m["user.id"] == reg.ID })
	if mailLine == nil || mailLine["trace.id"] != traceID {
		t.Errorf("worker's mail line %v: want trace.id %s", mailLine, traceID)
	}
	// Every line of every process is an ECS object; every line logged
	// inside a request has its trace id with its request id; no line
	// carries a password, token, hash or the DSN's password.
	procs := append(append(append([]*cluster.Proc{c.Gateway()}, c.APIs()...), c.Services()...), c.Workers()...)
	secrets := []string{userPassword, "a brand new passphrase", tok, reg.Access, reg.Refresh, "$argon2id$", "usersvc_test:usersvc_test@", "usersvc:usersvc@"}
	for _, p := range procs {
		checkLogLines(t, p, secrets)
	}
	checkECSMapping(t, procs)
	checkShippedLogs(t, logStore, traceID)
	t.Logf("trace %s: %d spans from gateway to worker; registered user %s", traceID, len(spans), reg.ID)
}

// checkLogLines checks the ECS shape of p's log lines and that none
// contains a secret.
func checkLogLines(t *testing.T, p *cluster.Proc, secrets []string) {
	t.Helper()
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("%s logged a secret (%.12s…): %s", p.Name(), s, line)
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%s: not a JSON line: %s", p.Name(), line)
			continue
		}
		for _, f := range []string{"@timestamp", "log.level", "message", "service.name"} {
			if _, ok := m[f]; !ok {
				t.Errorf("%s: line without %s: %s", p.Name(), f, line)
			}
		}
		if _, inRequest := m["transaction.id"]; inRequest {
			n++
			if _, ok := m["trace.id"]; !ok {
				t.Errorf("%s: request line without trace.id: %s", p.Name(), line)
			}
		}
	}
	if p.Role() == "api" && n == 0 {
		t.Errorf("%s logged no request lines", p.Name())
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitTrace polls Jaeger until the trace is complete by done.
func waitTrace(t *testing.T, j *observe.Jaeger, traceID string, done func([]observe.Span) bool) []observe.Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans, err := j.Trace(traceID)
		if err != nil {
			t.Fatal(err)
		}
		if len(spans) > 0 && done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s incomplete after 30s:\n%s", traceID, describe(spans))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkParents: every span's parent is in the trace, except the gateway's
// server span, whose parent is the client's.
func checkParents(t *testing.T, spans []observe.Span, clientSpan string) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	roots := 0
	for _, s := range spans {
		p := s.Parent()
		switch {
		case p == clientSpan:
			roots++
			if s.Service != "gateway" {
				t.Errorf("span %q of %s is the child of the client's span; want the gateway's", s.OperationName, s.Service)
			}
		case p == "" || !ids[p]:
			t.Errorf("span %q of %s has parent %q, not in the trace", s.OperationName, s.Service, p)
		}
	}
	if roots != 1 {
		t.Errorf("%d spans are children of the client's span, want 1", roots)
	}
}

// findSpan finds a span of service named op that descends from under (any
// span when under is nil).
func findSpan(spans []observe.Span, service, op string, under *observe.Span, byID map[string]observe.Span) *observe.Span {
	for i := range spans {
		s := &spans[i]
		if s.Service != service || s.OperationName != op {
			continue
		}
		if under == nil {
			return s
		}
		for p := s.Parent(); p != ""; p = byID[p].Parent() {
			if p == under.SpanID {
				return s
			}
		}
	}
	return nil
}

func hasSpan(spans []observe.Span, service, op string) bool {
	for _, s := range spans {
		if s.Service == service && s.OperationName == op {
			return true
		}
	}
	return false
}

func hasSpanPrefix(spans []observe.Span, service, prefix string) bool {
	for _, s := range spans {
		if s.Service == service && strings.HasPrefix(s.OperationName, prefix) {
			return true
		}
	}
	return false
}

func hasService(spans []observe.Span, service string) bool {
	for _, s := range spans {
		if s.Service == service {
			return true
		}
	}
	return false
}

// checkNoSecrets fails if any tag of any span contains one of secrets.
func checkNoSecrets(t *testing.T, spans []observe.Span, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		for _, tag := range s.Tags {
			v := fmt.Sprint(tag.Value)
			for _, secret := range secrets {
				if secret != "" && strings.Contains(v, secret) {
					t.Errorf("span %q of %s: tag %s carries a secret: %q", s.OperationName, s.Service, tag.Key, v)
				}
			}
		}
	}
}

func describe(spans []observe.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %-14s %-45q parent=%s\n", s.SpanID, s.Service, s.OperationName, s.Parent())
	}
	return b.String()
}

// findLogLine returns the first JSON line of the log file that match
// accepts.
func findLogLine(t *testing.T, path string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkShippedLogs finds the reset request's log lines in the log store by
// the trace id Jaeger showed: the API's access line and the worker's mail
// line, each with its ECS fields.
func checkShippedLogs(t *testing.T, store *observe.VictoriaLogs, traceID string) {
	t.Helper()
	q := `"trace.id":="` + traceID + `"`
	var got []map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		got, err = store.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		services := map[string]bool{}
		for _, e := range got {
			services[e["service.name"]] = true
		}
		if services["user.api"] && services["user.worker"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log store: %s found %d lines, want the API's and the worker's: %v", q, len(got), got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, e := range got {
		if e["service.name"] == "user.api" && (e["transaction.id"] != "trace-reset-1" || e["http.route"] != "/user/password") {
			t.Errorf("shipped access line %v", e)
		}
	}
	t.Logf("log store: %d lines of trace %s, found by its id", len(got), traceID)
}
