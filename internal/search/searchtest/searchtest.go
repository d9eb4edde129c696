// Package searchtest is the contract suite for search.Index: the behaviour
// every adapter must show, run against each of them (bleveindex always,
// elastic when a real Elasticsearch is configured). Adapter tests add only
// what is specific to them; anything a caller may rely on belongs here.
package searchtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/user"
)

// Run runs the contract suite. open must return an empty index that is
// closed when t ends; writes must be visible to Search once Upsert or
// Delete returns (configure near-real-time engines to refresh).
func Run(t *testing.T, open func(t *testing.T) search.Index) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, idx search.Index)
}{
	{"Ping", testPing},
	{"Prefix", testPrefix},
	{"MultipleTerms", testMultipleTerms},
	{"Typos", testTypos},
	{"CaseInsensitive", testCaseInsensitive},
	{"Filters", testFilters},
	{"EmptyTextListsByID", testEmptyText},
	{"NoWordsMatchesNothing", testNoWords},
	{"Ranking", testRanking},
	{"Limit", testLimit},
	{"Paging", testPaging},
	{"CursorBoundToQuery", testCursorBoundToQuery},
	{"IdempotentUpsert", testIdempotentUpsert},
	{"UpdateReplacesDoc", testUpdateReplacesDoc},
	{"OlderVersionIgnored", testOlderVersionIgnored},
	{"SameVersionKeepsFirst", testSameVersionKeepsFirst},
	{"DuplicatesInOneCall", testDuplicatesInOneCall},
	{"Delete", testDelete},
	{"DeleteOlderThanDocIgnored", testDeleteOlderIgnored},
	{"NoResurrectionAfterDelete", testNoResurrection},
	{"NewerUpsertAfterDeleteWins", testNewerAfterDelete},
	{"InvalidQuery", testInvalidQuery},
	{"InvalidDoc", testInvalidDoc},
	{"Concurrency", testConcurrency},
	{"ConcurrentVersionsOfOneID", testConcurrentVersionsOfOneID},
}

// base is a realistic version: event times in Unix microseconds.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixMicro()

// Version returns the v-th test version (base+v).
func Version(v int64) int64 { return base + v }

// ID returns the n-th test ID; IDs sort like n, as UUIDv7s sort like
// their creation.
func ID(n int) string { return fmt.Sprintf("0190f000-0000-7000-8000-%012d", n) }

// Doc returns a test document for ID(n) at version base+v.
func Doc(n int, name, email string, v int64) search.Doc {
	t := time.UnixMicro(base + v).UTC()
	return search.Doc{Snapshot: user.Snapshot{ID: ID(n), Name: name, Email: email, Role: user.RoleUser, Status: user.StatusActive,
		CreatedAt: t, UpdatedAt: t}, Version: base + v}
}

func upsert(t *testing.T, idx search.Index, docs ...search.Doc) {
	t.Helper()
	if err := idx.Upsert(t.Context(), docs...); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
}

func del(t *testing.T, idx search.Index, n int, v int64) {
	t.Helper()
	if err := idx.Delete(t.Context(), ID(n), base+v); err != nil {
		t.Fatalf("Delete(%s): %v", ID(n), err)
	}
}

func find(t *testing.T, idx search.Index, q search.Query) search.Result {
	t.Helper()
	r, err := idx.Search(t.Context(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return r
}

// all follows the cursor to the end and returns every ID in order,
// checking the page sizes and Total on the way.
func all(t *testing.T, idx search.Index, q search.Query) []string {
	t.Helper()
	var ids []string
	limit := q.Limit
	if limit == 0 {
		limit = search.DefaultLimit
	}
	var total int64 = -1
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("Search(%+v): cursor never ends", q)
		}
		r := find(t, idx, q)
		if len(r.IDs) > limit {
			t.Fatalf("Search(%+v): %d IDs on a page, limit %d", q, len(r.IDs), limit)
		}
		if total >= 0 && r.Total != total {
			t.Fatalf("Search(%+v): Total changed between pages: %d then %d", q, total, r.Total)
		}
		total = r.Total
		ids = append(ids, r.IDs...)
		if r.Next == "" {
			break
		}
		if len(r.IDs) < limit {
			t.Fatalf("Search(%+v): short page (%d of %d) with a Next cursor", q, len(r.IDs), limit)
		}
		q.After = r.Next
	}
	if int64(len(ids)) != total {
		t.Fatalf("Search(%+v): pages hold %d IDs, Total says %d", q, len(ids), total)
	}
	return ids
}

// expect checks the set of IDs text finds (one page, order ignored).
func expect(t *testing.T, idx search.Index, q search.Query, want ...int) {
	t.Helper()
	r := find(t, idx, q)
	got := slices.Sorted(slices.Values(r.IDs))
	w := ids(want...)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Errorf("Search(%+v) = %v, want %v", q, got, w)
	}
	if r.Total != int64(len(w)) {
		t.Errorf("Search(%+v).Total = %d, want %d", q, r.Total, len(w))
	}
}

func expectText(t *testing.T, idx search.Index, text string, want ...int) {
	t.Helper()
	expect(t, idx, search.Query{Text: text}, want...)
}

func ids(ns ...int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = ID(n)
	}
	return out
}

// people is the small index most text tests use.
func people(t *testing.T, idx search.Index) {
	alice := Doc(1, "Alice Smith", "alice@example.com", 1)
	bob := Doc(2, "Bob Jones", "bob.jones@example.org", 1)
	bob.Role = user.RoleAdmin
	carol := Doc(3, "Carol White", "carol@wonder.net", 1)
	carol.Status = user.StatusDisabled
	zoe := Doc(4, "Zoë Ångström", "zoe@umlaut.se", 1)
	zoe.Role, zoe.Status = user.RoleAdmin, user.StatusDisabled
	upsert(t, idx, alice, bob, carol, zoe)
}

func testPing(t *testing.T, idx search.Index) {
	if err := idx.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testPrefix(t *testing.T, idx search.Index) {
	people(t, idx)
	for _, c := range []struct {
		text string
		want []int
	}{
		{"ali", []int{1}},         // name, first word
		{"smi", []int{1}},         // name, later word
		{"jon", []int{2}},         // name
		{"a", []int{1}},           // one letter is a prefix too
		{"alice@exa", []int{1}},   // email: words split at punctuation
		{"bob.jo", []int{2}},      // email local part
		{"example", []int{1, 2}},  // email domain, two users
		{"example.org", []int{2}}, // whole domain
		{"wonder.n", []int{3}},
		{"ångs", []int{4}}, // non-ASCII
		{"zo", []int{4}},
		{"alice smith", []int{1}},
		{"xyzzy", nil},
	} {
		expectText(t, idx, c.text, c.want...)
	}
}

func testMultipleTerms(t *testing.T, idx search.Index) {
	people(t, idx)
	expectText(t, idx, "alice jones") // every term must match
	expectText(t, idx, "ali exa", 1)  // terms may match different fields
	expectText(t, idx, "smith example.com", 1)
	expectText(t, idx, "  bob   jones  ", 2) // extra space is ignored
}

func testTypos(t *testing.T, idx search.Index) {
	people(t, idx)
	for _, c := range []struct {
		text string
		want []int
	}{
		{"alicw", []int{1}},    // substitution
		{"alcie", []int{1}},    // transposition counts as one edit
		{"alic", []int{1}},     // (prefix)
		{"smtih", []int{1}},    // transposition in a later word
		{"jnoes", []int{2}},    // transposition, five letters
		{"carrol", []int{3}},   // insertion
		{"wonedr", []int{3}},   // email word
		{"angstrom", []int{4}}, // two substitutions in eight letters
		{"alxxe", nil},         // two edits in five letters is too many
		{"bib", nil},           // no typos in words under four letters
		{"smyth jnoes", nil},   // both terms typo-matched, but different users
	} {
		expectText(t, idx, c.text, c.want...)
	}
}

func testCaseInsensitive(t *testing.T, idx search.Index) {
	people(t, idx)
	expectText(t, idx, "ALI", 1)
	expectText(t, idx, "Alice@Example.COM", 1)
	expectText(t, idx, "ÅNGSTRÖM", 4)
	expectText(t, idx, "ZOË", 4)
}

func testFilters(t *testing.T, idx search.Index) {
	people(t, idx)
	expect(t, idx, search.Query{Role: user.RoleAdmin}, 2, 4)
	expect(t, idx, search.Query{Role: user.RoleUser}, 1, 3)
	expect(t, idx, search.Query{Status: user.StatusDisabled}, 3, 4)
	expect(t, idx, search.Query{Role: user.RoleAdmin, Status: user.StatusDisabled}, 4)
	expect(t, idx, search.Query{Role: user.RoleUser, Status: user.StatusActive}, 1)
	expect(t, idx, search.Query{Text: "example", Role: user.RoleAdmin}, 2)
	expect(t, idx, search.Query{Text: "example", Status: user.StatusDisabled})
}

func testEmptyText(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(7, "G", "g@x.io", 1), Doc(3, "C", "c@x.io", 1), Doc(5, "E", "e@x.io", 1), Doc(1, "A", "a@x.io", 1))
	r := find(t, idx, search.Query{})
	if want := ids(1, 3, 5, 7); !slices.Equal(r.IDs, want) || r.Total != 4 || r.Next != "" {
		t.Errorf("Search({}) = %+v, want IDs %v, Total 4, no Next", r, want)
	}
	r = find(t, idx, search.Query{Text: "  "})
	if want := ids(1, 3, 5, 7); !slices.Equal(r.IDs, want) {
		t.Errorf("Search(blank) = %v, want %v", r.IDs, want)
	}
}

func testNoWords(t *testing.T, idx search.Index) {
	people(t, idx)
	// Text that holds no word cannot match a word: nothing, not everything.
	expectText(t, idx, "@.-+")
}

func testRanking(t *testing.T, idx search.Index) {
	// Same shape, so only the match decides: an exact word ranks above a
	// typo even when the typo has the smaller ID.
	upsert(t, idx, Doc(1, "Alicw Brown", "ab1@corp.io", 1), Doc(2, "Alice Brown", "ab2@corp.io", 1))
	if r := find(t, idx, search.Query{Text: "alice"}); !slices.Equal(r.IDs, ids(2, 1)) {
		t.Errorf("Search(alice) = %v, want exact match first %v", r.IDs, ids(2, 1))
	}
	// Equal relevance: ordered by ID.
	for _, n := range []int{15, 13, 19, 17} {
		upsert(t, idx, Doc(n, "Dana Same", "dana@same.io", 1))
	}
	for _, text := range []string{"dana", "same", "dana same"} {
		if r := find(t, idx, search.Query{Text: text}); !slices.Equal(r.IDs, ids(13, 15, 17, 19)) {
			t.Errorf("Search(%s) = %v, want ties by ID %v", text, r.IDs, ids(13, 15, 17, 19))
		}
	}
}

func testLimit(t *testing.T, idx search.Index) {
	var docs []search.Doc
	for i := 1; i <= 25; i++ {
		docs = append(docs, Doc(i, "Lim Person", fmt.Sprintf("l%d@x.io", i), 1))
	}
	upsert(t, idx, docs...)
	r := find(t, idx, search.Query{})
	if len(r.IDs) != search.DefaultLimit || r.Total != 25 || r.Next == "" {
		t.Errorf("default limit: %d IDs, Total %d, Next %q; want %d, 25, a cursor", len(r.IDs), r.Total, r.Next, search.DefaultLimit)
	}
	r = find(t, idx, search.Query{Text: "lim", Limit: search.MaxLimit})
	if len(r.IDs) != 25 || r.Next != "" {
		t.Errorf("max limit: %d IDs, Next %q; want 25 and no cursor", len(r.IDs), r.Next)
	}
	r = find(t, idx, search.Query{Limit: 1})
	if !slices.Equal(r.IDs, ids(1)) || r.Total != 25 {
		t.Errorf("limit 1: %v, Total %d", r.IDs, r.Total)
	}
}

func testPaging(t *testing.T, idx search.Index) {
	// Names of different lengths give different scores, so a text query
	// pages across scores as well as across ties.
	const n = 45
	var docs []search.Doc
	for i := 1; i <= n; i++ {
		d := Doc(i, "Person"+strings.Repeat(" Filler", i%4), fmt.Sprintf("p%d@page.io", i), 1)
		if i%3 == 0 {
			d.Role = user.RoleAdmin
		}
		docs = append(docs, d)
	}
	upsert(t, idx, docs...)
	every := ids(func() []int {
		var ns []int
		for i := 1; i <= n; i++ {
			ns = append(ns, i)
		}
		return ns
	}()...)

	for _, q := range []search.Query{
		{Text: "person", Limit: 7},
		{Text: "pers page", Limit: 7},
		{Text: "persn", Limit: 4},  // typo
		{Text: "person", Limit: 9}, // matches fill the last page exactly
		{Limit: 7},
		{Limit: 45},
	} {
		got := all(t, idx, q)
		if !slices.Equal(slices.Sorted(slices.Values(got)), every) {
			t.Errorf("paging %+v: got %d IDs %v, want each of %d exactly once", q, len(got), got, n)
		}
		if q.Text == "" && !slices.Equal(got, every) {
			t.Errorf("paging %+v: want ID order, got %v", q, got)
		}
	}
	// Relevance first: the shortest names (i%4 == 0) lead.
	r := find(t, idx, search.Query{Text: "person", Limit: 3})
	for _, id := range r.IDs {
		if !slices.Contains(ids(4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44), id) {
			t.Errorf("Search(person) first page %v: %s is not among the shortest names", r.IDs, id)
		}
	}
	// Filtered paging.
	got := all(t, idx, search.Query{Text: "person", Role: user.RoleAdmin, Limit: 4})
	if len(got) != n/3 {
		t.Errorf("filtered paging: %d IDs, want %d", len(got), n/3)
	}
	for _, id := range got {
		if i := slices.Index(every, id) + 1; i%3 != 0 {
			t.Errorf("filtered paging returned non-admin %s", id)
		}
	}
}

func testCursorBoundToQuery(t *testing.T, idx search.Index) {
	people(t, idx)
	r := find(t, idx, search.Query{Text: "example", Limit: 1})
	if r.Next == "" {
		t.Fatalf("Search(example, limit 1) = %+v, want a cursor", r)
	}
	// The same query with another limit or spelling may continue...
	r2, err := idx.Search(t.Context(), search.Query{Text: "EXAMPLE", Limit: 5, After: r.Next})
	if err != nil || len(r2.IDs) != 1 || r2.IDs[0] == r.IDs[0] || r2.Next != "" {
		t.Errorf("continue with another limit: %+v, %v; want the other match, no cursor", r2, err)
	}
	// ...another query may not.
	for _, q := range []search.Query{
		{Text: "alice", After: r.Next},
		{Text: "example", Role: user.RoleAdmin, After: r.Next},
		{After: r.Next},
	} {
		if _, err := idx.Search(t.Context(), q); !errors.Is(err, search.ErrInvalidQuery) {
			t.Errorf("Search(%+v) with a cursor of another query: %v, want ErrInvalidQuery", q, err)
		}
	}
}

func testIdempotentUpsert(t *testing.T, idx search.Index) {
	d := Doc(1, "Ivan Twice", "ivan@x.io", 1)
	upsert(t, idx, d)
	upsert(t, idx, d)
	upsert(t, idx, d, d)
	expectText(t, idx, "ivan", 1)
	expect(t, idx, search.Query{}, 1)
}

func testUpdateReplacesDoc(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Carol Old", "carol@old.io", 1))
	d := Doc(1, "Caroline New", "caroline@new.io", 2)
	d.Role = user.RoleAdmin
	upsert(t, idx, d)
	expectText(t, idx, "carol", 1)
	expectText(t, idx, "old")
	expectText(t, idx, "new", 1)
	expect(t, idx, search.Query{Role: user.RoleAdmin}, 1)
	expect(t, idx, search.Query{Role: user.RoleUser})
}

func testOlderVersionIgnored(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Newname", "new@x.io", 5))
	upsert(t, idx, Doc(1, "Oldname", "old@x.io", 3)) // delivered late
	expectText(t, idx, "newname", 1)
	expectText(t, idx, "oldname")
}

func testSameVersionKeepsFirst(t *testing.T, idx search.Index) {
	// A version is written once: a replay of it never changes the doc.
	upsert(t, idx, Doc(1, "Firstname", "f@x.io", 5))
	upsert(t, idx, Doc(1, "Secondname", "s@x.io", 5))
	expectText(t, idx, "firstname", 1)
	expectText(t, idx, "secondname")
}

func testDuplicatesInOneCall(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Early", "e@x.io", 1), Doc(1, "Later", "l@x.io", 2))
	upsert(t, idx, Doc(2, "Newest", "n@x.io", 3), Doc(2, "Stale", "s@x.io", 2))
	expectText(t, idx, "later", 1)
	expectText(t, idx, "early")
	expectText(t, idx, "newest", 2)
	expectText(t, idx, "stale")
}

func testDelete(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Gone Soon", "gone@x.io", 1), Doc(2, "Stays Here", "stays@x.io", 1))
	del(t, idx, 1, 2)
	expectText(t, idx, "gone")
	expect(t, idx, search.Query{}, 2)
	del(t, idx, 1, 2) // replayed
	del(t, idx, 9, 1) // never indexed: the delete overtook the create
	expect(t, idx, search.Query{}, 2)
}

func testDeleteOlderIgnored(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Still Here", "still@x.io", 5))
	del(t, idx, 1, 3) // a delete older than the doc: it was re-created since
	expectText(t, idx, "still", 1)
}

func testNoResurrection(t *testing.T, idx search.Index) {
	upsert(t, idx, Doc(1, "Lazarus", "l@x.io", 1))
	del(t, idx, 1, 3)
	upsert(t, idx, Doc(1, "Lazarus Updated", "l@x.io", 2)) // an update delivered after the delete
	expectText(t, idx, "lazarus")
	// Delete first, then the create it overtook.
	del(t, idx, 2, 3)
	upsert(t, idx, Doc(2, "Phoenix", "p@x.io", 1))
	expectText(t, idx, "phoenix")
	expect(t, idx, search.Query{})
}

func testNewerAfterDelete(t *testing.T, idx search.Index) {
	// The service never re-uses IDs (UUIDv7), but the rule is uniform:
	// the newest version wins, whether it is a delete or an upsert.
	upsert(t, idx, Doc(1, "Before", "b@x.io", 1))
	del(t, idx, 1, 2)
	upsert(t, idx, Doc(1, "Again", "a@x.io", 3))
	expectText(t, idx, "again", 1)
	expectText(t, idx, "before")
	del(t, idx, 2, 2)
	upsert(t, idx, Doc(2, "Fresh", "f@x.io", 3))
	expectText(t, idx, "fresh", 2)
}

func testInvalidQuery(t *testing.T, idx search.Index) {
	people(t, idx)
	ok := search.Query{Text: strings.Repeat("é", search.MaxTextLength)}
	if _, err := idx.Search(t.Context(), ok); err != nil {
		t.Errorf("Search(%d runes): %v, want no error", search.MaxTextLength, err)
	}
	for name, q := range map[string]search.Query{
		"text too long":   {Text: strings.Repeat("é", search.MaxTextLength+1)},
		"invalid UTF-8":   {Text: "ali\xffce"},
		"control char":    {Text: "ali\x00ce"},
		"too many words":  {Text: strings.Repeat("ab ", search.MaxTerms+1)},
		"unknown role":    {Role: "root"},
		"unknown status":  {Status: "gone"},
		"negative limit":  {Limit: -1},
		"limit above max": {Limit: search.MaxLimit + 1},
		"garbage cursor":  {After: "not a cursor!"},
		"base64 cursor":   {After: "e30"}, // {}
		"huge cursor":     {After: strings.Repeat("A", search.MaxCursorLength+1)},
	} {
		if _, err := idx.Search(t.Context(), q); !errors.Is(err, search.ErrInvalidQuery) {
			t.Errorf("%s: Search = %v, want ErrInvalidQuery", name, err)
		}
	}
}

func testInvalidDoc(t *testing.T, idx search.Index) {
	good := Doc(1, "Valid", "v@x.io", 1)
	for name, d := range map[string]search.Doc{
		"no id":      {Snapshot: user.Snapshot{Name: "x"}, Version: 1},
		"no version": {Snapshot: user.Snapshot{ID: ID(2), Name: "x"}},
		"long id":    {Snapshot: user.Snapshot{ID: strings.Repeat("x", search.MaxIDLength+1)}, Version: 1},
	} {
		// One bad doc fails the whole call before anything is written.
		if err := idx.Upsert(t.Context(), good, d); !errors.Is(err, search.ErrInvalidDoc) {
			t.Errorf("%s: Upsert = %v, want ErrInvalidDoc", name, err)
		}
	}
	expectText(t, idx, "valid")
	if err := idx.Delete(t.Context(), "", 1); !errors.Is(err, search.ErrInvalidDoc) {
		t.Errorf("Delete(no id) = %v, want ErrInvalidDoc", err)
	}
	if err := idx.Delete(t.Context(), ID(1), 0); !errors.Is(err, search.ErrInvalidDoc) {
		t.Errorf("Delete(version 0) = %v, want ErrInvalidDoc", err)
	}
	if err := idx.Upsert(t.Context()); err != nil {
		t.Errorf("Upsert() = %v, want nil", err)
	}
}

func testConcurrency(t *testing.T, idx search.Index) {
	const workers, each = 8, 40
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	// A reader searches while the writers write.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ctx.Err() == nil {
			if _, err := idx.Search(ctx, search.Query{Text: "worker"}); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("concurrent Search: %w", err)
				return
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < each; {
				// Alternate single docs and small batches.
				size := 1 + i%5
				var docs []search.Doc
				for ; size > 0 && i < each; size-- {
					n := w*each + i + 1
					docs = append(docs, Doc(n, fmt.Sprintf("Worker W%d", w), fmt.Sprintf("w%d.%d@conc.io", w, i), 1))
					i++
				}
				if err := idx.Upsert(t.Context(), docs...); err != nil {
					errs <- fmt.Errorf("concurrent Upsert: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	<-readerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := all(t, idx, search.Query{Limit: search.MaxLimit})
	if len(got) != workers*each {
		t.Fatalf("after concurrent upserts: %d docs, want %d", len(got), workers*each)
	}
	if r := find(t, idx, search.Query{Text: "worker"}); r.Total != workers*each {
		t.Errorf("Search(worker).Total = %d, want %d", r.Total, workers*each)
	}
	if r := find(t, idx, search.Query{Text: "conc.io"}); r.Total != workers*each {
		t.Errorf("Search(conc.io).Total = %d, want %d", r.Total, workers*each)
	}
}

func testConcurrentVersionsOfOneID(t *testing.T, idx search.Index) {
	// Writers race on one ID with different versions, released together:
	// the newest must win whatever order they land in, which needs an
	// atomic check-and-write (or the engine's own versioning).
	words := []string{"Quartz", "Mango", "Violet", "Pepper", "Kiwi", "Tundra", "Orbit", "Yellow"}
	const rounds = 12
	for round := range rounds {
		n := round + 1
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, len(words))
		for i, w := range words {
			// Writer i writes version 1+(i+round)%len: the newest moves
			// from writer to writer, so it is not always the last started.
			v := int64(1 + (i+round)%len(words))
			wg.Go(func() {
				<-start
				if err := idx.Upsert(t.Context(), Doc(n, w, "race@x.io", v)); err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Upsert: %v", err)
		}
		winner := words[(2*len(words)-1-round)%len(words)] // the writer of version len(words)
		for _, w := range words {
			r := find(t, idx, search.Query{Text: w})
			if has := slices.Contains(r.IDs, ID(n)); has != (w == winner) {
				t.Errorf("round %d: Search(%s) = %v; only the newest version (%s) should match", round, w, r.IDs, winner)
			}
		}
	}
}
