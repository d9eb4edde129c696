package elastic

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/user"
)

// mappingVersion is stored in the index's _meta; EnsureIndex refuses an
// index created with another definition. Bump it whenever indexDefinition
// changes, and re-index into a new index.
const mappingVersion = "usersvc-search-1"

// indexDefinition is the index this code owns: settings and mappings, sent
// as is when EnsureIndex creates the index.
//
//   - usersvc_words splits name and email into words exactly like
//     search.Terms (runs of letters, digits and marks; "@", ".", "+" and
//     the like separate) and lower-cases them, as the bleve adapter does, so
//     both engines agree on what a word is and "smith" finds
//     alice.smith@example.com. The standard (UAX#29) tokenizer would keep
//     "alice.smith" and "example.com" whole.
//   - index_prefixes makes prefix queries (bool_prefix below) a single
//     term lookup: ES indexes each word's 1–10 character prefixes in a hidden
//     edge-n-gram field, the same mechanism search_as_you_type uses, and
//     falls back to a term-dictionary walk for longer prefixes.
//   - id, role and status are keywords: exact filters, and id is the sort
//     tie-breaker (sorting on _id needs fielddata, off by default in 8.x).
//   - version mirrors the external version, for inspection.
//   - One shard: the user index is small, and a single shard gives the same
//     relevance statistics for every document, so equal documents tie
//     exactly and are ordered by ID.
//   - dynamic: strict turns a field this code forgot to map into an error
//     instead of a guessed mapping.
//
// Deletes are remembered (so an older write cannot resurrect a document)
// only for index.gc_deletes, 60s by default: see Index.Delete.
const indexDefinition = `{
  "settings": {
    "number_of_shards": 1,
    "analysis": {
      "tokenizer": {
        "usersvc_words": {"type": "pattern", "pattern": "[^\\p{L}\\p{N}\\p{M}]+"}
      },
      "analyzer": {
        "usersvc_words": {"type": "custom", "tokenizer": "usersvc_words", "filter": ["lowercase"]}
      }
    }
  },
  "mappings": {
    "dynamic": "strict",
    "_meta": {"usersvc_mapping_version": "usersvc-search-1"},
    "properties": {
      "id":         {"type": "keyword"},
      "name":       {"type": "text", "analyzer": "usersvc_words", "index_prefixes": {"min_chars": 1, "max_chars": 10}},
      "email":      {"type": "text", "analyzer": "usersvc_words", "index_prefixes": {"min_chars": 1, "max_chars": 10}},
      "role":       {"type": "keyword"},
      "status":     {"type": "keyword"},
      "created_at": {"type": "date"},
      "updated_at": {"type": "date"},
      "version":    {"type": "long"}
    }
  }
}`

// textFields are searched by Query.Text.
var textFields = []string{"name", "email"}

// fuzziness is search.Fuzziness in Elasticsearch's terms: no edits below 4
// characters, one below 6, two from 6. Transpositions count as one edit
// (fuzzy_transpositions defaults to true).
const fuzziness = "AUTO:4,6"

// source is the stored document: the snapshot's fields under their JSON
// names (promoted from the embedded struct), with times in UTC, plus the
// version. The mapping above is strict, so a field added to the snapshot
// needs a line in the mapping too.
type source struct {
	user.Snapshot
	Version int64 `json:"version"`
}

// bulkOp is one line pair of a bulk request: an index (doc set) or a
// delete (doc nil), both carrying the external version.
type bulkOp struct {
	id      string
	version int64
	doc     *source
}

type bulkMeta struct {
	ID          string `json:"_id"`
	Version     int64  `json:"version"`
	VersionType string `json:"version_type"`
}

// bulkBody renders ops as the bulk API's NDJSON. version_type external makes
// Elasticsearch apply an operation only if its version is greater than the
// one it holds and answer 409 otherwise: the ordering rule of search.Index,
// enforced atomically by the engine.
func bulkBody(ops []bulkOp) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode ends each value with "\n"
	enc.SetEscapeHTML(false)
	for _, op := range ops {
		meta := bulkMeta{ID: op.id, Version: op.version, VersionType: "external"}
		action := "index"
		if op.doc == nil {
			action = "delete"
		}
		if err := enc.Encode(map[string]bulkMeta{action: meta}); err != nil {
			return nil, err
		}
		if op.doc != nil {
			if err := enc.Encode(op.doc); err != nil {
				return nil, err
			}
		}
	}
	return buf.Bytes(), nil
}

func docSource(d search.Doc) *source {
	snap := d.Snapshot
	snap.CreatedAt, snap.UpdatedAt = snap.CreatedAt.UTC(), snap.UpdatedAt.UTC()
	return &source{Snapshot: snap, Version: d.Version}
}

type obj = map[string]any

// searchBody builds the search request for a normalised query: terms are
// search.Terms(q.Text), after the sort key of the previous page's last hit.
//
// Every term must match (bool must), each as a prefix of a word of name or
// email (multi_match bool_prefix: one term, so it is a prefix query) or
// within the fuzziness (multi_match with fuzziness; left out for terms too
// short to have typos, where it would only repeat the exact match the
// prefix clause already finds). An exact word matches both clauses and so
// outscores a typo. Role and status are filters (no effect on scoring).
// Sorting by _score then id, search_after continues after the cursor's
// (score, id); track_total_hits makes Total exact beyond 10,000; one hit
// more than the limit tells whether a next page exists.
func searchBody(q search.Query, terms []string, after []json.RawMessage) ([]byte, error) {
	must := []any{}
	for _, t := range terms {
		should := []any{
			obj{"multi_match": obj{"query": t, "type": "bool_prefix", "fields": textFields}},
		}
		if search.Fuzziness(t) > 0 {
			should = append(should, obj{"multi_match": obj{"query": t, "fields": textFields, "fuzziness": fuzziness, "operator": "and"}})
		}
		must = append(must, obj{"bool": obj{"should": should, "minimum_should_match": 1}})
	}
	filter := []any{}
	if q.Role != "" {
		filter = append(filter, obj{"term": obj{"role": string(q.Role)}})
	}
	if q.Status != "" {
		filter = append(filter, obj{"term": obj{"status": string(q.Status)}})
	}
	body := obj{
		"size":             q.Limit + 1,
		"track_total_hits": true,
		"_source":          false,
		"query":            obj{"bool": obj{"must": must, "filter": filter}},
		"sort":             []any{obj{"_score": "desc"}, obj{"id": "asc"}},
	}
	if after != nil {
		body["search_after"] = after
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("elastic: search body: %w", err)
	}
	return b, nil
}

// checkAfter validates a decoded cursor: a number (score) and a string (id),
// as Elasticsearch returned them in the last hit's sort.
func checkAfter(after []json.RawMessage) error {
	if len(after) != 2 {
		return fmt.Errorf("%w: malformed cursor", search.ErrInvalidQuery)
	}
	var score float64
	var id string
	if json.Unmarshal(after[0], &score) != nil || json.Unmarshal(after[1], &id) != nil || id == "" {
		return fmt.Errorf("%w: malformed cursor", search.ErrInvalidQuery)
	}
	return nil
}

// Responses: only the parts this adapter reads.

type esError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

type bulkItem struct {
	ID     string   `json:"_id"`
	Status int      `json:"status"`
	Error  *esError `json:"error"`
}

// bulkError returns an error for the failed items of a bulk response, or
// nil. A version conflict is not a failure: it means the index already
// holds the same or a newer version, which is exactly when search.Index
// says to ignore the write. Neither is deleting a missing document: the
// delete still records its version (a tombstone).
func bulkError(r bulkResponse) error {
	if !r.Errors {
		return nil
	}
	var failed []string
	for _, item := range r.Items {
		for action, it := range item {
			switch {
			case it.Status >= 200 && it.Status < 300:
			case it.Status == 409 && it.Error != nil && it.Error.Type == "version_conflict_engine_exception":
			case it.Status == 404 && action == "delete" && it.Error == nil:
			default:
				msg := fmt.Sprintf("%s %s: status %d", action, it.ID, it.Status)
				if it.Error != nil {
					msg += fmt.Sprintf(" %s: %s", it.Error.Type, it.Error.Reason)
				}
				failed = append(failed, msg)
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	n := len(failed)
	if n > 3 {
		failed = append(failed[:3], fmt.Sprintf("and %d more", n-3))
	}
	return fmt.Errorf("elastic: bulk: %d of %d operations failed: %v", n, len(r.Items), failed)
}

type searchResponse struct {
	TimedOut bool `json:"timed_out"`
	Hits     struct {
		Total struct {
			Value    int64  `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			ID   string            `json:"_id"`
			Sort []json.RawMessage `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
}
