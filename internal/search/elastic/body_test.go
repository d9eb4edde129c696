package elastic

// Unit tests of the request bodies and response handling: pure JSON, no
// server. They pin what the adapter sends; whether Elasticsearch then
// behaves as the contract says is TestContract's job.

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/user"
)

// jsonEqual compares two JSON texts structurally.
func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got invalid JSON %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestIndexDefinition(t *testing.T) {
	var def struct {
		Settings struct {
			Analysis struct {
				Tokenizer map[string]struct {
					Type, Pattern string
				}
			}
		}
		Mappings struct {
			Dynamic    string
			Meta       map[string]string `json:"_meta"`
			Properties map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(indexDefinition), &def); err != nil {
		t.Fatalf("indexDefinition is not JSON: %v", err)
	}
	if v := def.Mappings.Meta["usersvc_mapping_version"]; v != mappingVersion {
		t.Errorf("_meta version %q, want mappingVersion %q", v, mappingVersion)
	}
	if def.Mappings.Dynamic != "strict" {
		t.Errorf("dynamic = %q, want strict", def.Mappings.Dynamic)
	}
	// dynamic: strict rejects any source field that is not mapped.
	// The names are read from the encoding, which includes the fields
	// promoted from the embedded snapshot.
	b, err := json.Marshal(source{})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for name := range fields {
		if _, ok := def.Mappings.Properties[name]; !ok {
			t.Errorf("source field %q is not mapped", name)
		}
	}
	for _, f := range []string{"id", "role", "status"} {
		if typ := def.Mappings.Properties[f]["type"]; typ != "keyword" {
			t.Errorf("%s is %v, want keyword", f, typ)
		}
	}
	if typ := def.Mappings.Properties["version"]["type"]; typ != "long" {
		t.Errorf("version is %v, want long", typ)
	}
	// The tokenizer splits exactly like search.Terms (Go and Java agree on
	// \p{L}, \p{N}, \p{M}).
	tok := def.Settings.Analysis.Tokenizer["usersvc_words"]
	if tok.Type != "pattern" {
		t.Fatalf("tokenizer type %q", tok.Type)
	}
	split := regexp.MustCompile(tok.Pattern)
	for _, s := range []string{"Alice Smith", "alice.smith+tag@Example.COM", "Zoë Ångström", "O'Brien-Smyth", "张伟 李", "  x  ", "user_42@x.io"} {
		got := slices.DeleteFunc(split.Split(strings.ToLower(s), -1), func(w string) bool { return w == "" })
		if want := search.Terms(s); !slices.Equal(got, want) {
			t.Errorf("pattern splits %q into %q, search.Terms into %q", s, got, want)
		}
	}
}

func TestBulkBody(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	d := search.Doc{Snapshot: user.Snapshot{ID: "u1", Email: "a@x.io", Name: "A <b>", Role: user.RoleAdmin, Status: user.StatusActive,
		CreatedAt: at, UpdatedAt: at}, Version: 1748779200000001}
	body, err := bulkBody([]bulkOp{{id: d.ID, version: d.Version, doc: docSource(d)}, {id: "u2", version: 7}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"index":{"_id":"u1","version":1748779200000001,"version_type":"external"}}
{"id":"u1","email":"a@x.io","name":"A <b>","role":"admin","status":"active","created_at":"2025-06-01T10:00:00Z","updated_at":"2025-06-01T10:00:00Z","version":1748779200000001}
{"delete":{"_id":"u2","version":7,"version_type":"external"}}
`
	if string(body) != want {
		t.Errorf("bulk body:\n%s\nwant:\n%s", body, want)
	}
}

func TestSearchBodyEmpty(t *testing.T) {
	q, _ := search.Query{}.Normalize()
	b, err := searchBody(q, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "empty query", b, `{
		"size": 21, "track_total_hits": true, "_source": false,
		"query": {"bool": {"must": [], "filter": []}},
		"sort": [{"_score": "desc"}, {"id": "asc"}]
	}`)
}

func TestSearchBodyTextFiltersCursor(t *testing.T) {
	q, err := search.Query{Text: "Ali Smithh", Role: user.RoleAdmin, Status: user.StatusDisabled, Limit: 5}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	after := []json.RawMessage{json.RawMessage(`2.4510317`), json.RawMessage(`"u9"`)}
	b, err := searchBody(q, search.Terms(q.Text), after)
	if err != nil {
		t.Fatal(err)
	}
	// "ali" is too short for typos: prefix only. "smithh" gets both.
	jsonEqual(t, "text query", b, `{
		"size": 6, "track_total_hits": true, "_source": false,
		"query": {"bool": {
			"must": [
				{"bool": {"minimum_should_match": 1, "should": [
					{"multi_match": {"query": "ali", "type": "bool_prefix", "fields": ["name", "email"]}}
				]}},
				{"bool": {"minimum_should_match": 1, "should": [
					{"multi_match": {"query": "smithh", "type": "bool_prefix", "fields": ["name", "email"]}},
					{"multi_match": {"query": "smithh", "fields": ["name", "email"], "fuzziness": "AUTO:4,6", "operator": "and"}}
				]}}
			],
			"filter": [{"term": {"role": "admin"}}, {"term": {"status": "disabled"}}]
		}},
		"sort": [{"_score": "desc"}, {"id": "asc"}],
		"search_after": [2.4510317, "u9"]
	}`)
}

// The Go fuzziness rule and Elasticsearch's AUTO:4,6 must agree.
func TestFuzzinessMatchesAuto(t *testing.T) {
	for term, want := range map[string]int{"abc": 0, "abcd": 1, "abcde": 1, "abcdef": 2, "åäöü": 1, "abcdefghijkl": 2} {
		if got := search.Fuzziness(term); got != want {
			t.Errorf("Fuzziness(%q) = %d, AUTO:4,6 gives %d", term, got, want)
		}
	}
}

func TestBulkError(t *testing.T) {
	item := func(action, id string, status int, errType string) map[string]bulkItem {
		it := bulkItem{ID: id, Status: status}
		if errType != "" {
			it.Error = &esError{Type: errType, Reason: "because"}
		}
		return map[string]bulkItem{action: it}
	}
	for _, c := range []struct {
		name string
		r    bulkResponse
		ok   bool
	}{
		{"all created", bulkResponse{Items: []map[string]bulkItem{item("index", "a", 201, "")}}, true},
		{"version conflict is success", bulkResponse{Errors: true, Items: []map[string]bulkItem{
			item("index", "a", 201, ""), item("index", "b", 409, "version_conflict_engine_exception"),
			item("delete", "c", 409, "version_conflict_engine_exception")}}, true},
		{"delete of missing doc is success", bulkResponse{Errors: true, Items: []map[string]bulkItem{item("delete", "a", 404, "")}}, true},
		{"other 409", bulkResponse{Errors: true, Items: []map[string]bulkItem{item("index", "a", 409, "something_else")}}, false},
		{"mapping error", bulkResponse{Errors: true, Items: []map[string]bulkItem{item("index", "a", 400, "document_parsing_exception")}}, false},
		{"index missing", bulkResponse{Errors: true, Items: []map[string]bulkItem{item("index", "a", 404, "index_not_found_exception")}}, false},
		{"rejected", bulkResponse{Errors: true, Items: []map[string]bulkItem{item("index", "a", 429, "es_rejected_execution_exception")}}, false},
	} {
		if err := bulkError(c.r); (err == nil) != c.ok {
			t.Errorf("%s: bulkError = %v, want ok=%v", c.name, err, c.ok)
		}
	}
	var many []map[string]bulkItem
	for range 5 {
		many = append(many, item("index", "x", 400, "document_parsing_exception"))
	}
	if err := bulkError(bulkResponse{Errors: true, Items: many}); err == nil || !strings.Contains(err.Error(), "5 of 5") || !strings.Contains(err.Error(), "and 2 more") {
		t.Errorf("bulkError(5 failures) = %v", err)
	}
}

func TestCheckAfter(t *testing.T) {
	ok := []json.RawMessage{json.RawMessage(`1.5`), json.RawMessage(`"id"`)}
	if err := checkAfter(ok); err != nil {
		t.Errorf("checkAfter(valid) = %v", err)
	}
	for _, bad := range [][]json.RawMessage{
		nil,
		{json.RawMessage(`1.5`)},
		{json.RawMessage(`"x"`), json.RawMessage(`"id"`)},
		{json.RawMessage(`1.5`), json.RawMessage(`2`)},
		{json.RawMessage(`1.5`), json.RawMessage(`""`)},
		{json.RawMessage(`1`), json.RawMessage(`"a"`), json.RawMessage(`"b"`)},
	} {
		if err := checkAfter(bad); !errors.Is(err, search.ErrInvalidQuery) {
			t.Errorf("checkAfter(%s) = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, name := range []string{"", ".", "Users", "a b", "-x", "_x", "a/b", "a*", strings.Repeat("a", 256)} {
		if _, err := New("http://localhost:9200", name); err == nil {
			t.Errorf("New(index %q): nil error", name)
		}
	}
	if _, err := New("", "users"); err == nil {
		t.Error("New(no url): nil error")
	}
	if _, err := New("http://localhost:9200", "users", WithRefresh("always")); err == nil {
		t.Error("New(WithRefresh(always)): nil error")
	}
	x, err := New("http://localhost:9200", "usersvc-users.v1", WithRefresh("wait_for"), WithBasicAuth("u", "p"))
	if err != nil {
		t.Fatalf("New(valid): %v", err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestSourceFormatUnchanged pins the stored document's field names: indexes
// built before the source embedded user.Snapshot hold exactly these, and
// the mapping is strict.
func TestSourceFormatUnchanged(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d := search.Doc{Snapshot: user.Snapshot{ID: "u1", Email: "a@x.io", Name: "A", Role: user.RoleAdmin,
		Status: user.StatusActive, CreatedAt: at, UpdatedAt: at}, Version: 7}
	b, err := json.Marshal(docSource(d))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"u1","email":"a@x.io","name":"A","role":"admin","status":"active",` +
		`"created_at":"2025-06-01T12:00:00Z","updated_at":"2025-06-01T12:00:00Z","version":7}`
	if string(b) != want {
		t.Errorf("source = %s\nwant     %s", b, want)
	}
}
