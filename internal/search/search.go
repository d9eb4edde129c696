// Package search is the port for searching users: the documents an index
// holds, the queries it answers and the contract every adapter meets.
//
// The index is derived data. It is fed from user events (see DocFromEvent)
// that may arrive late, twice or out of order, so every write carries a
// version (the event's time) and an index keeps the newest one per ID,
// including for deletions. Adapters: bleveindex (embedded, the default) and
// elastic (Elasticsearch). The behaviour both must show is pinned by one
// contract suite, searchtest.Run; the rules shared by both (validation,
// tokenisation, fuzziness, cursors) live here so they cannot drift apart.
package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usersvc/usersvc/internal/user"
)

// Limits on queries and documents. Every input an index accepts is bounded
// here, so a caller cannot make one query expensive.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// MaxTextLength bounds Query.Text in runes: user names are at most
	// user.MaxNameLength runes, so longer text cannot match better.
	MaxTextLength = 100
	// MaxTerms bounds the words of Query.Text: each term becomes several
	// prefix and fuzzy sub-queries, so the count bounds the work.
	MaxTerms = 10
	// MaxCursorLength bounds Query.After; cursors this package makes are a
	// few dozen bytes.
	MaxCursorLength = 1024
	// MaxIDLength is Elasticsearch's limit on a document _id (bytes); user
	// IDs are 36-byte UUIDs.
	MaxIDLength = 512
)

var (
	// ErrInvalidQuery marks a query that can never succeed: too long, bad
	// filter values, a limit out of range or a cursor this query did not
	// produce. Callers map it to a client error (HTTP 400).
	ErrInvalidQuery = errors.New("search: invalid query")
	// ErrInvalidDoc marks a document or deletion no index will accept (no
	// ID, no version). An event consumer should drop such a message rather
	// than retry it forever.
	ErrInvalidDoc = errors.New("search: invalid document")
)

// Doc is what an index holds for one user: the user's snapshot (the
// fields searched or filtered on, and the ones an engine stores with them),
// plus the version that orders writes.
type Doc struct {
	user.Snapshot
	// Version orders writes to the same ID: the time of the event that
	// produced the write, in Unix microseconds (EventVersion). A write with
	// a version not newer than the one held is ignored, so replays and late
	// deliveries are harmless.
	Version int64
}

// Validate reports whether an index can store d; errors wrap ErrInvalidDoc.
func (d Doc) Validate() error {
	if err := checkWrite(d.ID, d.Version); err != nil {
		return err
	}
	if !utf8.ValidString(d.Email) || !utf8.ValidString(d.Name) {
		return fmt.Errorf("%w: %s: email and name must be valid UTF-8", ErrInvalidDoc, d.ID)
	}
	return nil
}

// CheckDelete validates the arguments of Index.Delete; errors wrap
// ErrInvalidDoc.
func CheckDelete(id string, version int64) error { return checkWrite(id, version) }

func checkWrite(id string, version int64) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: id is required", ErrInvalidDoc)
	case len(id) > MaxIDLength || !utf8.ValidString(id):
		return fmt.Errorf("%w: id must be valid UTF-8 of at most %d bytes", ErrInvalidDoc, MaxIDLength)
	case version <= 0:
		// Elasticsearch external versions must be positive, and 0 is what
		// a forgotten field looks like.
		return fmt.Errorf("%w: %s: version must be positive, got %d", ErrInvalidDoc, id, version)
	}
	return nil
}

// Query asks for users. The zero Query lists the first DefaultLimit users
// by ID.
type Query struct {
	// Text matches words of name and email: each term must match some word
	// as a prefix or within a few typos (Fuzziness), case-insensitively.
	// Empty text matches every user.
	Text   string
	Role   user.Role   // exact filter, if set
	Status user.Status // exact filter, if set
	Limit  int         // 0 means DefaultLimit; at most MaxLimit
	// After is the cursor from a previous Result.Next of the same query
	// (same Text, Role and Status); "" starts at the beginning.
	After string
}

// Result is one page of matches, best first (relevance, then ID).
type Result struct {
	IDs []string
	// Total counts every match of the query, not just this page.
	Total int64
	// Next is the cursor for the following page, "" on the last one.
	Next string
}

// Index is a searchable set of user documents. Implementations are safe for
// concurrent use.
type Index interface {
	// Upsert stores each doc unless the index already holds the same or a
	// newer Version of its ID (live or deleted), so it is idempotent and
	// order-insensitive: an old event delivered late never overwrites a
	// newer one.
	Upsert(ctx context.Context, docs ...Doc) error
	// Delete removes the ID as of version; the version is remembered, so a
	// later Upsert with an older version does not resurrect it. Deleting an
	// ID the index never held is not an error (the delete may have
	// overtaken the create).
	Delete(ctx context.Context, id string, version int64) error
	// Search returns a page of matches. Invalid queries fail with an error
	// wrapping ErrInvalidQuery.
	Search(ctx context.Context, q Query) (Result, error)
	// Ping reports whether the index can serve requests (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Normalize validates q and fills in defaults: Text trimmed, Limit
// defaulted. Adapters call it first; errors wrap ErrInvalidQuery.
func (q Query) Normalize() (Query, error) {
	q.Text = strings.TrimSpace(q.Text)
	switch {
	case !utf8.ValidString(q.Text):
		return q, fmt.Errorf("%w: text must be valid UTF-8", ErrInvalidQuery)
	case utf8.RuneCountInString(q.Text) > MaxTextLength:
		return q, fmt.Errorf("%w: text must be at most %d characters", ErrInvalidQuery, MaxTextLength)
	case strings.IndexFunc(q.Text, unicode.IsControl) >= 0:
		return q, fmt.Errorf("%w: text must not contain control characters", ErrInvalidQuery)
	case len(Terms(q.Text)) > MaxTerms:
		return q, fmt.Errorf("%w: text must have at most %d words", ErrInvalidQuery, MaxTerms)
	case q.Role != "" && !q.Role.Valid():
		return q, fmt.Errorf("%w: unknown role %q", ErrInvalidQuery, q.Role)
	case q.Status != "" && !q.Status.Valid():
		return q, fmt.Errorf("%w: unknown status %q", ErrInvalidQuery, q.Status)
	case q.Limit < 0 || q.Limit > MaxLimit:
		return q, fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalidQuery, MaxLimit)
	case len(q.After) > MaxCursorLength:
		return q, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return q, nil
}

// IsWordRune reports whether r is part of a word. Everything else (space,
// punctuation, "@", ".", "+", symbols) separates words, so an email splits
// into its parts and "smith" finds "alice.smith@example.com". The index
// analyzers of both adapters use the same rule (a pattern tokenizer on
// [^\p{L}\p{N}\p{M}]+); keeping Go, bleve and Elasticsearch in agreement is
// what lets query terms be compared with indexed words directly.
func IsWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// Terms splits text into lower-cased words, as the index analyzers do.
func Terms(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !IsWordRune(r) })
}

// Fuzziness is how many typos (insertions, deletions, substitutions or
// transpositions of adjacent letters) a term may contain: none below four
// characters, where one edit turns most words into others; one for four or
// five; two from six. This is Elasticsearch's fuzziness "AUTO:4,6".
func Fuzziness(term string) int {
	switch n := utf8.RuneCountInString(term); {
	case n < 4:
		return 0
	case n < 6:
		return 1
	default:
		return 2
	}
}

// EventVersion is the version of the write an event causes: its time in
// Unix microseconds. Events of one user are at least microseconds apart, so
// later events get larger versions; the store's clock is the single source.
func EventVersion(e user.Event) int64 { return e.OccurredAt.UnixMicro() }

// DocFromEvent turns a created or updated event into the document to
// upsert. It returns false for every other event (deletions go to
// Index.Delete with EventVersion; the password events change nothing
// searchable) and for events without a user.
func DocFromEvent(e user.Event) (Doc, bool) {
	if (e.Type != user.EventCreated && e.Type != user.EventUpdated) || e.User == nil {
		return Doc{}, false
	}
	u := e.User
	id := e.UserID
	if id == "" {
		id = u.ID
	}
	snap := *u
	snap.ID = id
	return Doc{Snapshot: snap, Version: EventVersion(e)}, true
}

// Searcher adapts an Index to the domain's Searcher port (user.Searcher),
// which List uses for text queries.
type Searcher struct{ Index Index }

// SearchUsers implements user.Searcher.
func (s Searcher) SearchUsers(ctx context.Context, q user.SearchQuery) (user.SearchResult, error) {
	r, err := s.Index.Search(ctx, Query{Text: q.Text, Role: q.Role, Status: q.Status, Limit: q.Limit, After: q.After})
	if err != nil {
		return user.SearchResult{}, err
	}
	return user.SearchResult{IDs: r.IDs, Total: r.Total, Next: r.Next}, nil
}
