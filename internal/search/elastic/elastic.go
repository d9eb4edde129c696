// Package elastic is the search.Index over Elasticsearch 8, for deployments
// that run it anyway or need several service replicas to share one index
// (the embedded bleveindex belongs to one process).
//
// It is deliberately thin: the index definition (indexDefinition), bulk
// writes with external versioning, and one bool query, sent as five plain
// JSON requests over net/http. (The official client was used before; its
// package links the typed API of every Elasticsearch endpoint into every
// usersvc role, several megabytes for the five calls made here.) Elasticsearch itself
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
	"net/url"
	"strings"

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
	hc      *http.Client
	base    *url.URL // the cluster's URL, without credentials
	index   string
	refresh string
	auth    string // the Authorization header, "" for none
}

var _ search.Index = (*Index)(nil)

// New returns an Index on the index named index at url (e.g.
// "http://localhost:9200"). It does not contact the server; call
// EnsureIndex at start-up.
func New(rawURL, index string, opts ...Option) (*Index, error) {
	if rawURL == "" {
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
	base, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("elastic: url %q: want http(s)://host[:port]", rawURL)
	}
	if base.User != nil && c.username == "" { // credentials in the URL, as the official client accepts
		c.username = base.User.Username()
		c.password, _ = base.User.Password()
	}
	base.User = nil
	x := &Index{hc: &http.Client{Transport: c.transport}, base: base, index: index, refresh: c.refresh}
	switch {
	case c.apiKey != "":
		x.auth = "ApiKey " + c.apiKey
	case c.username != "":
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(c.username, c.password)
		x.auth = r.Header.Get("Authorization")
	}
	return x, nil
}

// response is an answer of Elasticsearch; its body must be closed.
type response struct {
	*http.Response
}

// IsError reports a status of 300 or above, as Elasticsearch's clients do.
func (r response) IsError() bool { return r.StatusCode > 299 }

// do sends one request: method on the index's path with the API's suffix
// (e.g. "/_bulk"), query parameters and an optional body.
func (x *Index) do(ctx context.Context, method, suffix string, query url.Values, body []byte, contentType string) (response, error) {
	u := *x.base
	u.Path += "/" + url.PathEscape(x.index) + suffix
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if x.auth != "" {
		req.Header.Set("Authorization", x.auth)
	}
	res, err := x.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	return response{res}, nil
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
	res, err := x.do(ctx, http.MethodHead, "", nil, nil, "")
	if err != nil {
		return fmt.Errorf("elastic: ensure index %s: %w", x.index, err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return x.checkMapping(ctx)
	case http.StatusNotFound:
	default:
		return fmt.Errorf("elastic: ensure index %s: %s", x.index, res.Status)
	}
	res, err = x.do(ctx, http.MethodPut, "", nil, []byte(indexDefinition), "application/json")
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
	res, err := x.do(ctx, http.MethodGet, "/_mapping", nil, nil, "")
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
	q := url.Values{}
	if x.refresh != "" {
		q.Set("refresh", x.refresh)
	}
	res, err := x.do(ctx, http.MethodPost, "/_bulk", q, body, "application/x-ndjson")
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
	// A missing shard is an error, not fewer users.
	params := url.Values{"allow_partial_search_results": {"false"}}
	res, err := x.do(ctx, http.MethodPost, "/_search", params, body, "application/json")
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
	res, err := x.do(ctx, http.MethodHead, "", nil, nil, "")
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
		return fmt.Errorf("elastic: ping: %s", res.Status)
	}
}

// Close releases the client's idle connections; the index is left as it
// is.
func (x *Index) Close() error {
	x.hc.CloseIdleConnections()
	return nil
}

// responseError describes an error response, with the start of its body
// (Elasticsearch puts the error type and reason there).
func responseError(op string, res response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	return fmt.Errorf("elastic: %s: %s: %s", op, res.Status, bytes.TrimSpace(b))
}
