package elastic

// PROTOCOL-LEVEL FAKE — NOT THE CONTRACT TEST.
//
// These tests run the adapter against an httptest server that checks the
// HTTP requests it sends (method, path, parameters, body) and replies with
// canned responses shaped like Elasticsearch 8's. The fake implements no
// search, analysis or versioning: a passing test proves the adapter speaks
// the protocol and reads the answers correctly, not that Elasticsearch
// then behaves as search.Index promises. Only TestContract, run against a
// real Elasticsearch (USERSVC_TEST_ELASTICSEARCH_URL), shows that.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/searchtest"
	"github.com/usersvc/usersvc/internal/user"
)

// fakeES serves one scripted handler per "METHOD /path" and records the
// requests. Unscripted requests fail the test.
type fakeES struct {
	t        *testing.T
	mu       sync.Mutex
	routes   map[string]func(w http.ResponseWriter, r *http.Request, body []byte)
	requests []string
}

func newFake(t *testing.T) (*fakeES, *Index) {
	f := &fakeES{t: t, routes: map[string]func(http.ResponseWriter, *http.Request, []byte){}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	x, err := New(srv.URL, "users", WithRefresh("true"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return f, x
}

func (f *fakeES) on(route string, h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

func (f *fakeES) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	route := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.requests = append(f.requests, route)
	h := f.routes[route]
	f.mu.Unlock()
	// The client refuses answers without this header (its product check).
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	if h == nil {
		f.t.Errorf("unexpected request %s", route)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h(w, r, body)
}

func (f *fakeES) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func status(code int) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(code) }
}

const mappingResponse = `{"users-000001": {"mappings": {"_meta": {"usersvc_mapping_version": %q}, "properties": {}}}}`

func TestProtocolEnsureIndexCreates(t *testing.T) {
	f, x := newFake(t)
	exists := false
	f.on("HEAD /users", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if exists {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	f.on("PUT /users", func(w http.ResponseWriter, r *http.Request, body []byte) {
		jsonEqual(t, "create index body", body, indexDefinition)
		exists = true
		reply(w, 200, `{"acknowledged": true, "shards_acknowledged": true, "index": "users"}`)
	})
	f.on("GET /users/_mapping", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 200, fmt.Sprintf(mappingResponse, mappingVersion))
	})
	if err := x.EnsureIndex(t.Context()); err != nil {
		t.Fatalf("EnsureIndex (create): %v", err)
	}
	if err := x.EnsureIndex(t.Context()); err != nil {
		t.Fatalf("EnsureIndex (exists): %v", err)
	}
	if err := x.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	want := []string{"HEAD /users", "PUT /users", "HEAD /users", "GET /users/_mapping", "HEAD /users"}
	if got := f.seen(); !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestProtocolEnsureIndexRace(t *testing.T) {
	f, x := newFake(t)
	f.on("HEAD /users", status(http.StatusNotFound))
	f.on("PUT /users", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 400, `{"error": {"type": "resource_already_exists_exception", "reason": "index [users] already exists"}, "status": 400}`)
	})
	f.on("GET /users/_mapping", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 200, fmt.Sprintf(mappingResponse, mappingVersion))
	})
	if err := x.EnsureIndex(t.Context()); err != nil {
		t.Fatalf("EnsureIndex after a concurrent create: %v", err)
	}
}

func TestProtocolEnsureIndexRefusesOtherMapping(t *testing.T) {
	f, x := newFake(t)
	f.on("HEAD /users", status(http.StatusOK))
	f.on("GET /users/_mapping", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 200, fmt.Sprintf(mappingResponse, "usersvc-search-0"))
	})
	if err := x.EnsureIndex(t.Context()); err == nil || !strings.Contains(err.Error(), "usersvc-search-0") {
		t.Fatalf("EnsureIndex on an old mapping: %v, want an error naming it", err)
	}
}

func TestProtocolPingMissingIndex(t *testing.T) {
	f, x := newFake(t)
	f.on("HEAD /users", status(http.StatusNotFound))
	if err := x.Ping(t.Context()); err == nil {
		t.Fatal("Ping with no index: nil error")
	}
}

// bulkLines parses an NDJSON bulk body into its JSON lines.
func bulkLines(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bulk line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Error("bulk body must end with a newline")
	}
	return lines
}

func TestProtocolUpsert(t *testing.T) {
	f, x := newFake(t)
	f.on("POST /users/_bulk", func(w http.ResponseWriter, r *http.Request, body []byte) {
		if got := r.URL.Query().Get("refresh"); got != "true" {
			t.Errorf("refresh = %q, want true (WithRefresh)", got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type = %q", ct)
		}
		lines := bulkLines(t, body)
		if len(lines) != 4 {
			t.Fatalf("%d bulk lines, want 4: %s", len(lines), body)
		}
		for i, id := range []string{searchtest.ID(1), searchtest.ID(2)} {
			meta, _ := lines[2*i]["index"].(map[string]any)
			if meta["_id"] != id || meta["version_type"] != "external" || meta["version"] != float64(searchtest.Version(int64(i+1))) {
				t.Errorf("action line %d = %v", 2*i, lines[2*i])
			}
			if src := lines[2*i+1]; src["id"] != id || src["version"] != float64(searchtest.Version(int64(i+1))) {
				t.Errorf("source line %d = %v", 2*i+1, src)
			}
		}
		// The second is older than what the index holds: ES answers 409.
		reply(w, 200, fmt.Sprintf(`{"took": 3, "errors": true, "items": [
			{"index": {"_index": "users", "_id": %q, "_version": %d, "result": "created", "status": 201}},
			{"index": {"_index": "users", "_id": %q, "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "version conflict, current version [9] is higher or equal to the one provided [2]"}}}
		]}`, searchtest.ID(1), searchtest.Version(1), searchtest.ID(2)))
	})
	err := x.Upsert(t.Context(), searchtest.Doc(1, "Alice", "a@x.io", 1), searchtest.Doc(2, "Bob", "b@x.io", 2))
	if err != nil {
		t.Fatalf("Upsert with a version conflict: %v, want nil (older writes are ignored)", err)
	}
}

func TestProtocolUpsertItemFailure(t *testing.T) {
	f, x := newFake(t)
	f.on("POST /users/_bulk", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 200, `{"took": 1, "errors": true, "items": [
			{"index": {"_id": "u1", "status": 400, "error": {"type": "document_parsing_exception", "reason": "strict mapping"}}}]}`)
	})
	err := x.Upsert(t.Context(), search.Doc{Snapshot: user.Snapshot{ID: "u1"}, Version: 1})
	if err == nil || !strings.Contains(err.Error(), "document_parsing_exception") {
		t.Fatalf("Upsert with a failed item: %v", err)
	}
}

func TestProtocolUpsertSplitsLargeBatches(t *testing.T) {
	f, x := newFake(t)
	var sizes []int
	f.on("POST /users/_bulk", func(w http.ResponseWriter, _ *http.Request, body []byte) {
		n := len(bulkLines(t, body)) / 2
		sizes = append(sizes, n)
		items := strings.TrimSuffix(strings.Repeat(`{"index": {"_id": "x", "status": 201}},`, n), ",")
		reply(w, 200, `{"errors": false, "items": [`+items+`]}`)
	})
	docs := make([]search.Doc, maxBulkOps+5)
	for i := range docs {
		docs[i] = searchtest.Doc(i, "N", "n@x.io", 1)
	}
	if err := x.Upsert(t.Context(), docs...); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sizes, []int{maxBulkOps, 5}) {
		t.Errorf("bulk sizes %v, want [%d 5]", sizes, maxBulkOps)
	}
}

func TestProtocolDelete(t *testing.T) {
	f, x := newFake(t)
	f.on("POST /users/_bulk", func(w http.ResponseWriter, _ *http.Request, body []byte) {
		lines := bulkLines(t, body)
		meta, _ := lines[0]["delete"].(map[string]any)
		if len(lines) != 1 || meta["_id"] != "u1" || meta["version"] != float64(42) || meta["version_type"] != "external" {
			t.Errorf("delete body %s", body)
		}
		// Deleting a missing doc: not_found, still records the version.
		reply(w, 200, `{"errors": false, "items": [{"delete": {"_id": "u1", "_version": 42, "result": "not_found", "status": 404}}]}`)
	})
	if err := x.Delete(t.Context(), "u1", 42); err != nil {
		t.Fatalf("Delete of a missing doc: %v", err)
	}
	if err := x.Delete(t.Context(), "", 42); !errors.Is(err, search.ErrInvalidDoc) {
		t.Fatalf("Delete(no id) = %v; it must fail before any request", err)
	}
	if got := f.seen(); len(got) != 1 {
		t.Errorf("requests %v, want one bulk", got)
	}
}

func TestProtocolSearchPaging(t *testing.T) {
	f, x := newFake(t)
	var bodies []map[string]any
	f.on("POST /users/_search", func(w http.ResponseWriter, r *http.Request, body []byte) {
		if got := r.URL.Query().Get("allow_partial_search_results"); got != "false" {
			t.Errorf("allow_partial_search_results = %q", got)
		}
		var b map[string]any
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("search body: %v", err)
		}
		bodies = append(bodies, b)
		if len(bodies) == 1 {
			// Limit 2: the adapter asks for 3 to learn whether more exist.
			reply(w, 200, `{"took": 2, "timed_out": false, "hits": {"total": {"value": 3, "relation": "eq"}, "max_score": 2.5, "hits": [
				{"_index": "users", "_id": "u1", "_score": 2.5, "sort": [2.5, "u1"]},
				{"_index": "users", "_id": "u2", "_score": 1.1234568, "sort": [1.1234568, "u2"]},
				{"_index": "users", "_id": "u3", "_score": 1.1234568, "sort": [1.1234568, "u3"]}]}}`)
			return
		}
		reply(w, 200, `{"took": 1, "timed_out": false, "hits": {"total": {"value": 3, "relation": "eq"}, "hits": [
			{"_index": "users", "_id": "u3", "_score": 1.1234568, "sort": [1.1234568, "u3"]}]}}`)
	})
	q := search.Query{Text: "Alice", Limit: 2}
	r, err := x.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.IDs, []string{"u1", "u2"}) || r.Total != 3 || r.Next == "" {
		t.Fatalf("page 1 = %+v", r)
	}
	if bodies[0]["size"] != float64(3) || bodies[0]["search_after"] != nil || bodies[0]["track_total_hits"] != true {
		t.Errorf("page 1 body %v", bodies[0])
	}
	q.After = r.Next
	r, err = x.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.IDs, []string{"u3"}) || r.Total != 3 || r.Next != "" {
		t.Fatalf("page 2 = %+v", r)
	}
	// The cursor carries the last hit's sort values back verbatim.
	raw, _ := json.Marshal(bodies[1]["search_after"])
	if string(raw) != `[1.1234568,"u2"]` {
		t.Errorf("page 2 search_after = %s, want [1.1234568,\"u2\"]", raw)
	}
}

func TestProtocolSearchInvalidNeverSent(t *testing.T) {
	f, x := newFake(t)
	for _, q := range []search.Query{{Limit: -1}, {After: "junk"}, {Text: strings.Repeat("x", 101)}} {
		if _, err := x.Search(t.Context(), q); !errors.Is(err, search.ErrInvalidQuery) {
			t.Errorf("Search(%+v) = %v, want ErrInvalidQuery", q, err)
		}
	}
	// A cursor with the right fingerprint but a wrong key shape.
	cq, _ := search.Query{Text: "a"}.Normalize()
	bad, _ := search.EncodeCursor(cq, []any{"not a score", "u1"})
	if _, err := x.Search(t.Context(), search.Query{Text: "a", After: bad}); !errors.Is(err, search.ErrInvalidQuery) {
		t.Errorf("Search(cursor with a bad key) = %v, want ErrInvalidQuery", err)
	}
	// No words: nothing to ask.
	if r, err := x.Search(t.Context(), search.Query{Text: "@@"}); err != nil || r.Total != 0 {
		t.Errorf("Search(@@) = %+v, %v", r, err)
	}
	if got := f.seen(); len(got) != 0 {
		t.Errorf("requests %v, want none", got)
	}
}

func TestProtocolErrors(t *testing.T) {
	f, x := newFake(t)
	f.on("POST /users/_search", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 400, `{"error": {"type": "search_phase_execution_exception", "reason": "all shards failed"}, "status": 400}`)
	})
	f.on("POST /users/_bulk", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 401, `{"error": {"type": "security_exception", "reason": "missing authentication credentials"}, "status": 401}`)
	})
	if _, err := x.Search(t.Context(), search.Query{}); err == nil || !strings.Contains(err.Error(), "all shards failed") {
		t.Errorf("Search on a 400: %v", err)
	}
	if err := x.Upsert(t.Context(), search.Doc{Snapshot: user.Snapshot{ID: "u1"}, Version: 1}); err == nil || !strings.Contains(err.Error(), "security_exception") {
		t.Errorf("Upsert on a 401: %v", err)
	}
	f.on("POST /users/_search", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, 200, `{"timed_out": true, "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}}`)
	})
	if _, err := x.Search(t.Context(), search.Query{}); err == nil {
		t.Error("Search that timed out: nil error")
	}
}

// TestProtocolAuth: credentials in the URL (as the contract test's
// USERSVC_TEST_ELASTICSEARCH_URL carries them) or given as options reach
// the server as the Authorization header, and never in the request URL.
func TestProtocolAuth(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		if r.URL.User != nil || r.URL.Path != "/prefix/users" {
			t.Errorf("request URL %v", r.URL)
		}
	}))
	defer srv.Close()
	withUser := strings.Replace(srv.URL, "http://", "http://elastic:secret@", 1) + "/prefix/"
	for _, c := range []struct {
		url  string
		opts []Option
	}{
		{withUser, nil},
		{srv.URL + "/prefix", []Option{WithBasicAuth("elastic", "secret")}},
		{withUser, []Option{WithAPIKey("a2V5")}},
	} {
		x, err := New(c.url, "users", c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Basic ZWxhc3RpYzpzZWNyZXQ=", "Basic ZWxhc3RpYzpzZWNyZXQ=", "ApiKey a2V5"}
	if !slices.Equal(got, want) {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
}
