// Package bleveindex is the embedded search.Index: a bleve (scorch) index in
// a directory under the service's data dir. It needs no server, so it is the
// default; the elastic package is the alternative for deployments that run
// Elasticsearch anyway or need several replicas to share one index (a bleve
// index belongs to one process: bleve locks the directory).
//
// Versions live in the documents themselves. Every ID holds one document:
// the user (kind "user") or, once deleted, a tombstone (kind "deleted") that
// keeps only the version. A write first reads the versions held for its
// IDs, then writes only the newer docs together with their versions in one
// bleve batch, so the version and the data can never disagree, even after a
// crash. (bleve's internal key-value storage would also hold versions, but
// scorch copies the whole internal map on every batch and merge: fine for a
// handful of keys, not for one per user.) Tombstones are never purged: one
// tiny document per deleted user, and deletions are rare.
package bleveindex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/regexp"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/usersvc/usersvc/internal/search"
)

// Field and analyzer names of the mapping.
const (
	fieldName    = "name"
	fieldEmail   = "email"
	fieldRole    = "role"
	fieldStatus  = "status"
	fieldKind    = "kind"    // kindUser or kindDeleted
	fieldVersion = "version" // decimal, stored only
	kindUser     = "user"
	kindDeleted  = "deleted"
	analyzerText = "usersvc_words"

	// mappingVersion is stored in the index; Open refuses an index built
	// with another mapping instead of silently answering with the wrong
	// analyzer. Bump it whenever newMapping changes; the index is derived
	// data, rebuilt by re-indexing.
	mappingVersion = "usersvc-search-1"
	mappingKey     = "usersvc_mapping_version"
)

// textFields are searched by Query.Text.
var textFields = []string{fieldName, fieldEmail}

// Index is a search.Index over a bleve index. It is safe for concurrent use:
// bleve serves concurrent searches and writes; mu only serialises writers
// so that reading the held versions and writing is atomic.
type Index struct {
	idx      bleve.Index
	analyzer analysis.Analyzer
	mu       sync.Mutex
	owner    string // the file naming this process as the index's holder
}

// lockWait is how long Open waits for another process to release the
// index before failing: one process at a time holds it (bolt's file lock),
// and a second one must fail fast and say who holds it, not hang.
const lockWait = time.Second

// ErrLocked is returned by Open when another process holds the index.
var ErrLocked = errors.New("index in use by another process")

var _ search.Index = (*Index)(nil)

// Open opens the index at path, creating it (and the directory) if missing
// or if path is an empty directory (a freshly mounted volume, say).
func Open(path string) (*Index, error) {
	idx, err := bleve.OpenUsing(path, map[string]any{"bolt_timeout": lockWait.String()})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bleveindex: open %s: %w (held by %s); stop that process first", path, ErrLocked, holder(path))
	}
	if errors.Is(err, bleve.ErrorIndexMetaMissing) && os.Remove(path) == nil {
		// os.Remove removes only an empty directory: nothing is lost.
		err = bleve.ErrorIndexPathDoesNotExist
	}
	switch {
	case errors.Is(err, bleve.ErrorIndexPathDoesNotExist):
		if idx, err = create(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("bleveindex: open %s: %w", path, err)
	default:
		v, err := idx.GetInternal([]byte(mappingKey))
		if err != nil || string(v) != mappingVersion {
			_ = idx.Close()
			return nil, fmt.Errorf("bleveindex: %s was built with mapping %q, this build uses %q: delete the directory and re-index (%v)",
				path, v, mappingVersion, err)
		}
	}
	a := idx.Mapping().AnalyzerNamed(analyzerText)
	if a == nil {
		_ = idx.Close()
		return nil, fmt.Errorf("bleveindex: %s: analyzer %s missing", path, analyzerText)
	}
	owner := path + ".owner"
	_ = os.WriteFile(owner, fmt.Appendf(nil, "pid %d (%s) since %s\n", os.Getpid(),
		strings.Join(os.Args, " "), time.Now().UTC().Format(time.RFC3339)), 0o644)
	return &Index{idx: idx, analyzer: a, owner: owner}, nil
}

// holder names the process that holds the index at path, from the owner
// file the holder wrote when it opened it.
func holder(path string) string {
	b, err := os.ReadFile(path + ".owner")
	if err != nil || len(b) == 0 {
		return "an unknown process"
	}
	return strings.TrimSpace(string(b))
}

func create(path string) (bleve.Index, error) {
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	idx, err := bleve.New(path, m)
	if err != nil {
		return nil, fmt.Errorf("bleveindex: create %s: %w", path, err)
	}
	if err := idx.SetInternal([]byte(mappingKey), []byte(mappingVersion)); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("bleveindex: create %s: %w", path, err)
	}
	return idx, nil
}

// newMapping is the mapping this code owns. Name and email are split into
// words exactly like search.Terms splits query text (runs of letters,
// digits and marks; everything else separates) and lower-cased, so a query
// term can be compared with indexed words directly by term-level prefix and
// fuzzy queries. bleve's unicode (UAX#29) tokenizer would keep
// "alice.smith" and "example.com" as single words, and then "smith" could
// not find the email. Prefix search uses prefix queries, which walk the
// term dictionary (an FST) and need no edge-n-gram field. Nothing is
// dynamic, stored or in _all except what is listed.
func newMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomTokenizer(analyzerText, map[string]any{
		"type":   regexp.Name,
		"regexp": `[\p{L}\p{N}\p{M}]+`,
	}); err != nil {
		return nil, fmt.Errorf("bleveindex: mapping: %w", err)
	}
	if err := m.AddCustomAnalyzer(analyzerText, map[string]any{
		"type":          custom.Name,
		"tokenizer":     analyzerText,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, fmt.Errorf("bleveindex: mapping: %w", err)
	}

	text := bleve.NewTextFieldMapping()
	text.Analyzer = analyzerText
	text.Store, text.IncludeInAll, text.IncludeTermVectors, text.DocValues = false, false, false, false

	keywordField := bleve.NewKeywordFieldMapping()
	keywordField.Store, keywordField.IncludeInAll, keywordField.IncludeTermVectors, keywordField.DocValues = false, false, false, false

	// The version is only ever read back by ID, never searched: stored as
	// a decimal string (exact for any int64, unlike bleve's float64
	// numbers) and not indexed.
	version := bleve.NewTextFieldMapping()
	version.Analyzer = keyword.Name
	version.Index, version.Store, version.IncludeInAll, version.IncludeTermVectors, version.DocValues = false, true, false, false, false

	kind := bleve.NewKeywordFieldMapping()
	kind.Store, kind.IncludeInAll, kind.IncludeTermVectors, kind.DocValues = false, false, false, false

	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt(fieldName, text)
	doc.AddFieldMappingsAt(fieldEmail, text)
	doc.AddFieldMappingsAt(fieldRole, keywordField)
	doc.AddFieldMappingsAt(fieldStatus, keywordField)
	doc.AddFieldMappingsAt(fieldKind, kind)
	doc.AddFieldMappingsAt(fieldVersion, version)

	m.DefaultMapping = doc
	m.DefaultAnalyzer = analyzerText
	m.IndexDynamic, m.StoreDynamic, m.DocValuesDynamic = false, false, false
	return m, m.Validate()
}

// Upsert implements search.Index.
func (x *Index) Upsert(ctx context.Context, docs ...search.Doc) error {
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	// Keep the newest doc per ID, in first-seen order.
	newest := make(map[string]int, len(docs))
	var order []search.Doc
	for _, d := range docs {
		if i, ok := newest[d.ID]; !ok {
			newest[d.ID] = len(order)
			order = append(order, d)
		} else if d.Version > order[i].Version {
			order[i] = d
		}
	}
	if len(order) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]string, len(order))
	for i, d := range order {
		ids[i] = d.ID
	}
	held, err := x.versions(ctx, ids)
	if err != nil {
		return err
	}
	b := x.idx.NewBatch()
	for _, d := range order {
		if held[d.ID] >= d.Version {
			continue // replay or late delivery: the index has newer data
		}
		if err := b.Index(d.ID, map[string]any{
			fieldName: d.Name, fieldEmail: d.Email, fieldRole: string(d.Role), fieldStatus: string(d.Status),
			fieldKind: kindUser, fieldVersion: strconv.FormatInt(d.Version, 10),
		}); err != nil {
			return fmt.Errorf("bleveindex: upsert %s: %w", d.ID, err)
		}
	}
	if b.Size() == 0 {
		return nil
	}
	if err := x.idx.Batch(b); err != nil {
		return fmt.Errorf("bleveindex: upsert: %w", err)
	}
	return nil
}

// Delete implements search.Index by replacing the doc with a tombstone.
func (x *Index) Delete(ctx context.Context, id string, version int64) error {
	if err := search.CheckDelete(id, version); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	held, err := x.versions(ctx, []string{id})
	if err != nil {
		return err
	}
	if held[id] >= version {
		return nil
	}
	// Indexing under the same ID replaces the user document atomically.
	if err := x.idx.Index(id, map[string]any{fieldKind: kindDeleted, fieldVersion: strconv.FormatInt(version, 10)}); err != nil {
		return fmt.Errorf("bleveindex: delete %s: %w", id, err)
	}
	return nil
}

// versions returns the version held for each of ids (live or tombstone);
// absent IDs are missing from the map (version 0). One doc-ID query reads
// them all.
func (x *Index) versions(ctx context.Context, ids []string) (map[string]int64, error) {
	req := bleve.NewSearchRequestOptions(query.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = []string{fieldVersion}
	req.SortBy([]string{"_id"}) // no scoring needed
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleveindex: read versions: %w", err)
	}
	held := make(map[string]int64, len(res.Hits))
	for _, h := range res.Hits {
		s, _ := h.Fields[fieldVersion].(string)
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bleveindex: %s: corrupt version %q", h.ID, s)
		}
		held[h.ID] = v
	}
	return held, nil
}

// Search implements search.Index. Each term of the text must match a word
// of name or email by prefix or within search.Fuzziness edits; role, status
// and kind are exact filters. Hits sort by score, then ID, and the cursor
// is the (score, ID) of the last hit, used as bleve's SearchAfter.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	q, err := q.Normalize()
	if err != nil {
		return search.Result{}, err
	}
	var after []string
	if q.After != "" {
		if err := search.DecodeCursor(q, &after); err != nil {
			return search.Result{}, err
		}
		if len(after) != 2 || after[1] == "" {
			return search.Result{}, fmt.Errorf("%w: malformed cursor", search.ErrInvalidQuery)
		}
		if _, err := strconv.ParseFloat(after[0], 64); err != nil {
			return search.Result{}, fmt.Errorf("%w: malformed cursor", search.ErrInvalidQuery)
		}
	}
	// The index analyzer splits like search.Terms (see newMapping) and
	// lower-cases exactly as the indexed words were (bleve also folds a
	// final Σ to ς, which strings.ToLower does not).
	terms := x.analyzer.Analyze([]byte(q.Text))
	if q.Text != "" && len(terms) == 0 {
		return search.Result{IDs: []string{}}, nil // no word to match
	}

	must := []query.Query{termQuery(fieldKind, kindUser)}
	if q.Role != "" {
		must = append(must, termQuery(fieldRole, string(q.Role)))
	}
	if q.Status != "" {
		must = append(must, termQuery(fieldStatus, string(q.Status)))
	}
	for _, t := range terms {
		must = append(must, textQuery(string(t.Term)))
	}
	// One more hit than asked tells whether there is a next page.
	req := bleve.NewSearchRequestOptions(query.NewConjunctionQuery(must), q.Limit+1, 0, false)
	req.SortBy([]string{"-_score", "_id"})
	if after != nil {
		req.SetSearchAfter(after)
	}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return search.Result{}, fmt.Errorf("bleveindex: search: %w", err)
	}
	out := search.Result{IDs: make([]string, 0, min(len(res.Hits), q.Limit)), Total: int64(res.Total)}
	for i, h := range res.Hits {
		if i == q.Limit {
			last := res.Hits[i-1]
			// 'g' with -1 precision round-trips the float64 exactly.
			if out.Next, err = search.EncodeCursor(q, []string{strconv.FormatFloat(last.Score, 'g', -1, 64), last.ID}); err != nil {
				return search.Result{}, err
			}
			break
		}
		out.IDs = append(out.IDs, h.ID)
	}
	return out, nil
}

func termQuery(field, term string) query.Query {
	q := query.NewTermQuery(term)
	q.SetField(field)
	return q
}

// textQuery matches one lower-cased term against name and email: as a
// prefix, or within search.Fuzziness edits. scorch's fuzzy automaton counts
// a swap of adjacent letters ("alcie") as one edit (Damerau), as
// Elasticsearch does and as people mistype. Exact and prefix matches
// satisfy more of these alternatives than typos do, and so score higher.
func textQuery(term string) query.Query {
	fz := search.Fuzziness(term)
	var alts []query.Query
	for _, f := range textFields {
		p := query.NewPrefixQuery(term)
		p.SetField(f)
		alts = append(alts, p)
		if fz > 0 {
			q := query.NewFuzzyQuery(term)
			q.SetFuzziness(fz)
			q.SetField(f)
			alts = append(alts, q)
		}
	}
	return query.NewDisjunctionQuery(alts)
}

// Ping implements search.Index: it fails once the index is closed or its
// files are unreadable.
func (x *Index) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := x.idx.DocCount(); err != nil {
		return fmt.Errorf("bleveindex: ping: %w", err)
	}
	return nil
}

// Close flushes and closes the index and releases the directory lock.
func (x *Index) Close() error {
	_ = os.Remove(x.owner)
	return x.idx.Close()
}
