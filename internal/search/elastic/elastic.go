// Package elastic is the search.Index over Elasticsearch 8, for deployments
// that run it anyway or need several service replicas to share one index
// (the embedded bleveindex belongs to one process).
//
// It is deliberately thin: the index definition (indexDefinition), bulk
// writes with external versioning, and one bool query. Elasticsearch itself
// enforces "newer version wins" (version_type=external), so unlike the bleve
// adapter this one keeps no locks and reads nothing before writing.
//
// Limits, compared with the contract:
//   - Deleted IDs are remembered only for index.gc_deletes (60s by
//     default). A write older than a delete that arrives later than that
//     recreates the document. The indexer delivers events in near order and
//     the service never re-uses IDs, so the window only matters for a
//     consumer that replays old events long after a delete; raise
//     index.gc_deletes for such replays.
//   - Writes become visible to Search at the next refresh (1s by default)
//     unless WithRefresh asks bulk requests to refresh.
//   - Relevance scores depend on index-wide statistics, so writes between
//     two pages can move hits across the cursor (as in bleve).
package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/usersvc/usersvc/internal/search"
)

// maxBulkOps bounds one bulk request; larger upserts are split.
const maxBulkOps = 1000

// Option configures New.
type Option func(*config) error

type config struct {
	transport          http.RoundTripper
	refresh            string
	username, password string
	apiKey             string
}

// WithTransport sets the HTTP transport (TLS settings, tests).
func WithTransport(rt http.RoundTripper) Option {
	return func(c *config) error { c.transport = rt; return nil }
}

// WithRefresh sets the refresh parameter of writes: "true" (refresh now;
// for tests), "wait_for" (return once searchable: read-your-writes at the
// cost of up to a refresh interval per call) or "" / "false" (the default:
// searchable within the index refresh interval, which suits an event
// consumer).
func WithRefresh(policy string) Option {
	return func(c *config) error {
		switch policy {
		case "", "false", "true", "wait_for":
			c.refresh = policy
			return nil
		}
		return fmt.Errorf("elastic: refresh %q: want \"\", \"false\", \"true\" or \"wait_for\"", policy)
	}
}

// WithBasicAuth authenticates with a user name and password.
func WithBasicAuth(username, password string) Option {
	return func(c *config) error { c.username, c.password = username, password; return nil }
}

// WithAPIKey authenticates with a base64-encoded API key (overrides basic
// auth).
func WithAPIKey(key string) Option {
	return func(c *config) error { c.apiKey = key; return nil }
}

// Index is a search.Index over one Elasticsearch index. It is safe for
// concurrent use.
type Index struct {
	es      *elasticsearch.Client
	index   string
	refresh string
}

var _ search.Index = (*Index)(nil)

// New returns an Index on the index named index at url (e.g.
// "http://localhost:9200"). It does not contact the server; call
// EnsureIndex at start-up.
func New(url, index string, opts ...Option) (*Index, error) {
	if url == "" {
		return nil, errors.New("elastic: url is required")
	}
	if err := checkIndexName(index); err != nil {
		return nil, err
	}
	var c config
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{url},
		Transport: c.transport,
		Username:  c.username,
		Password:  c.password,
		APIKey:    c.apiKey,
	})
	if err != nil {
		return nil, fmt.Errorf("elastic: %w", err)
	}
	return &Index{es: es, index: index, refresh: c.refresh}, nil
}

// checkIndexName applies Elasticsearch's index name rules, so a bad name
// fails at start-up with a clear message rather than on the first write.
func checkIndexName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("elastic: invalid index name %q", name)
	case len(name) > 255 || strings.ToLower(name) != name || strings.ContainsAny(name, "\\/*?\"<>| ,#:") ||
		strings.ContainsAny(name[:1], "-_+"):
		return fmt.Errorf("elastic: invalid index name %q: lower case, at most 255 bytes, none of \\/*?\"<>| ,#: and not starting with -_+", name)
	}
	return nil
}

// EnsureIndex creates the index with indexDefinition if it does not exist,
// and otherwise checks that it was created from this definition.
func (x *Index) EnsureIndex(ctx context.Context) error {
	res, err := esapi.IndicesExistsRequest{Index: []string{x.index}}.Do(ctx, x.es)
	if err != nil {
		return fmt.Errorf("elastic: ensure index %s: %w", x.index, err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return x.checkMapping(ctx)
	case http.StatusNotFound:
	default:
		return fmt.Errorf("elastic: ensure index %s: %s", x.index, res.Status())
	}
	res, err = esapi.IndicesCreateRequest{Index: x.index, Body: strings.NewReader(indexDefinition)}.Do(ctx, x.es)
	if err != nil {
		return fmt.Errorf("elastic: create index %s: %w", x.index, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		err := responseError("create index "+x.index, res)
		// Another replica created it in between.
		if res.StatusCode == http.StatusBadRequest && strings.Contains(err.Error(), "resource_already_exists_exception") {
			return x.checkMapping(ctx)
		}
		return err
	}
	return nil
}

// checkMapping refuses an index created from another definition: it would
// analyze differently and answer queries wrongly without any error.
func (x *Index) checkMapping(ctx context.Context) error {
	res, err := esapi.IndicesGetMappingRequest{Index: []string{x.index}}.Do(ctx, x.es)
	if err != nil {
		return fmt.Errorf("elastic: get mapping %s: %w", x.index, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return responseError("get mapping "+x.index, res)
	}
	// Keyed by concrete index name (x.index may be an alias).
	var m map[string]struct {
		Mappings struct {
			Meta map[string]any `json:"_meta"`
		} `json:"mappings"`
	}
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		return fmt.Errorf("elastic: get mapping %s: %w", x.index, err)
	}
	if len(m) == 0 {
		return fmt.Errorf("elastic: get mapping %s: no index in response", x.index)
	}
	for name, im := range m {
		if v := im.Mappings.Meta["usersvc_mapping_version"]; v != mappingVersion {
			return fmt.Errorf("elastic: index %s has mapping version %v, this build needs %s: re-index into a new index", name, v, mappingVersion)
		}
	}
	return nil
}

// Upsert implements search.Index with bulk index operations.
func (x *Index) Upsert(ctx context.Context, docs ...search.Doc) error {
	ops := make([]bulkOp, 0, len(docs))
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return err
		}
		ops = append(ops, bulkOp{id: d.ID, version: d.Version, doc: docSource(d)})
	}
	for len(ops) > 0 {
		n := min(len(ops), maxBulkOps)
		if err := x.bulk(ctx, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// Delete implements search.Index with a bulk delete carrying the external
// version. Elasticsearch records the version even when the document does
// not exist, but only for index.gc_deletes (see the package comment).
func (x *Index) Delete(ctx context.Context, id string, version int64) error {
	if err := search.CheckDelete(id, version); err != nil {
		return err
	}
	return x.bulk(ctx, []bulkOp{{id: id, version: version}})
}

func (x *Index) bulk(ctx context.Context, ops []bulkOp) error {
	body, err := bulkBody(ops)
	if err != nil {
		return fmt.Errorf("elastic: bulk body: %w", err)
	}
	res, err := esapi.BulkRequest{
		Index: x.index, Body: bytes.NewReader(body), Refresh: x.refresh,
		Header: http.Header{"Content-Type": {"application/x-ndjson"}},
	}.Do(ctx, x.es)
	if err != nil {
		return fmt.Errorf("elastic: bulk: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return responseError("bulk", res)
	}
	var r bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return fmt.Errorf("elastic: bulk response: %w", err)
	}
	if len(r.Items) != len(ops) {
		return fmt.Errorf("elastic: bulk: %d results for %d operations", len(r.Items), len(ops))
	}
	return bulkError(r)
}

// Search implements search.Index; see searchBody for the query.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	q, err := q.Normalize()
	if err != nil {
		return search.Result{}, err
	}
	var after []json.RawMessage
	if q.After != "" {
		if err := search.DecodeCursor(q, &after); err != nil {
			return search.Result{}, err
		}
		if err := checkAfter(after); err != nil {
			return search.Result{}, err
		}
	}
	terms := search.Terms(q.Text)
	if q.Text != "" && len(terms) == 0 {
		return search.Result{IDs: []string{}}, nil // no word to match
	}
	body, err := searchBody(q, terms, after)
	if err != nil {
		return search.Result{}, err
	}
	partial := false
	res, err := esapi.SearchRequest{
		Index: []string{x.index}, Body: bytes.NewReader(body),
		AllowPartialSearchResults: &partial, // a missing shard is an error, not fewer users
	}.Do(ctx, x.es)
	if err != nil {
		return search.Result{}, fmt.Errorf("elastic: search: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return search.Result{}, responseError("search", res)
	}
	var r searchResponse
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return search.Result{}, fmt.Errorf("elastic: search response: %w", err)
	}
	if r.TimedOut {
		return search.Result{}, errors.New("elastic: search timed out")
	}
	hits := r.Hits.Hits
	out := search.Result{IDs: make([]string, 0, min(len(hits), q.Limit)), Total: r.Hits.Total.Value}
	for i, h := range hits {
		if i == q.Limit {
			// Sort values are passed back verbatim: no float round trip.
			if out.Next, err = search.EncodeCursor(q, hits[i-1].Sort); err != nil {
				return search.Result{}, err
			}
			break
		}
		out.IDs = append(out.IDs, h.ID)
	}
	return out, nil
}

// Ping implements search.Index: the cluster answers and the index exists.
func (x *Index) Ping(ctx context.Context) error {
	res, err := esapi.IndicesExistsRequest{Index: []string{x.index}}.Do(ctx, x.es)
	if err != nil {
		return fmt.Errorf("elastic: ping: %w", err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("elastic: ping: index %s does not exist (EnsureIndex creates it)", x.index)
	default:
		return fmt.Errorf("elastic: ping: %s", res.Status())
	}
}

// Close releases the client's connections; the index is left as it is.
func (x *Index) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := x.es.Close(ctx); err != nil && !errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		return fmt.Errorf("elastic: close: %w", err)
	}
	return nil
}

// responseError describes an error response, with the start of its body
// (Elasticsearch puts the error type and reason there).
func responseError(op string, res *esapi.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	return fmt.Errorf("elastic: %s: %s: %s", op, res.Status(), bytes.TrimSpace(b))
}
