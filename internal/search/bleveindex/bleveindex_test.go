package bleveindex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/searchtest"
)

func open(t testing.TB) *Index {
	t.Helper()
	x, err := Open(filepath.Join(t.TempDir(), "search"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return x
}

func TestContract(t *testing.T) {
	searchtest.Run(t, func(t *testing.T) search.Index { return open(t) })
}

// The analyzer must split and lower-case exactly like search.Terms: query
// terms are compared with indexed words by term-level queries.
func TestAnalyzerMatchesTerms(t *testing.T) {
	x := open(t)
	for _, s := range []string{
		"Alice Smith", "alice.smith+tag@Example.COM", "Zoë Ångström", "O'Brien-Smyth", "张伟 李",
		"ΟΔΥΣΣΕΥΣ", "user_42@x.io", "Åsa  Öberg\tNilsson", "José (Pepe) 3rd", "",
	} {
		var got []string
		for _, tok := range x.analyzer.Analyze([]byte(s)) {
			got = append(got, string(tok.Term))
		}
		// bleve folds a final Σ to ς; strings.ToLower does not.
		got = slices.Collect(func(yield func(string) bool) {
			for _, g := range got {
				if !yield(strings.ReplaceAll(g, "ς", "σ")) {
					return
				}
			}
		})
		want := search.Terms(s)
		if !slices.Equal(got, want) {
			t.Errorf("analyze %q = %q, search.Terms = %q", s, got, want)
		}
	}
}

func TestReopenKeepsDocsAndVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "search")
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := x.Upsert(ctx, searchtest.Doc(1, "Persisted Person", "p@x.io", 5)); err != nil {
		t.Fatal(err)
	}
	if err := x.Delete(ctx, searchtest.ID(2), searchtest.Version(9)); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Ping(ctx); err == nil {
		t.Error("Ping after Close: nil error")
	}

	x, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer x.Close()
	if err := x.Upsert(ctx, searchtest.Doc(1, "Stale", "s@x.io", 4), searchtest.Doc(2, "Zombie", "z@x.io", 8)); err != nil {
		t.Fatal(err)
	}
	r, err := x.Search(ctx, search.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{searchtest.ID(1)}; !slices.Equal(r.IDs, want) || r.Total != 1 {
		t.Errorf("after reopen: %+v, want only %v", r, want)
	}
	if r, _ := x.Search(ctx, search.Query{Text: "persisted"}); r.Total != 1 {
		t.Errorf("after reopen: Search(persisted) = %+v", r)
	}
}

func TestOpenCreatesInEmptyDir(t *testing.T) {
	dir := t.TempDir() // exists, empty
	x, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(empty dir): %v", err)
	}
	x.Close()
	// A directory with something else in it is never touched.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other); err == nil {
		t.Fatal("Open(non-empty, non-index dir): nil error")
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Fatalf("Open touched a foreign directory: %v", err)
	}
}

func TestOpenRefusesOtherMapping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "search")
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.idx.SetInternal([]byte(mappingKey), []byte("usersvc-search-0")); err != nil {
		t.Fatal(err)
	}
	x.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("Open of an index with another mapping version: nil error")
	}
}

func TestInvalidQueryIsTyped(t *testing.T) {
	x := open(t)
	_, err := x.Search(t.Context(), search.Query{Limit: 1000})
	if !errors.Is(err, search.ErrInvalidQuery) {
		t.Fatalf("err = %v", err)
	}
}

// benchDocs are n users with realistic, varied names.
func benchDocs(n int, version int64) []search.Doc {
	first := []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë"}
	last := []string{"Smith", "Jones", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Johnson", "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood"}
	docs := make([]search.Doc, n)
	for i := range docs {
		f, l := first[i%len(first)], last[(i/len(first))%len(last)]
		d := searchtest.Doc(i+1, fmt.Sprintf("%s %s %d", f, l, i), fmt.Sprintf("%s.%s%d@example.com", f, l, i), version)
		docs[i] = d
	}
	return docs
}

// BenchmarkUpsert measures indexing in batches of 100 new documents (one
// op = one batch), the shape of a bulk re-index.
func BenchmarkUpsert(b *testing.B) {
	x := open(b)
	const batch = 100
	docs := benchDocs(batch*b.N, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := x.Upsert(b.Context(), docs[i*batch:(i+1)*batch]...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSearchPrefix measures a typical search-box query (a short
// prefix plus a typo-tolerant word) over 10k users.
func BenchmarkSearchPrefix(b *testing.B) {
	x := open(b)
	docs := benchDocs(10_000, 1)
	for i := 0; i < len(docs); i += 1000 {
		if err := x.Upsert(b.Context(), docs[i:i+1000]...); err != nil {
			b.Fatal(err)
		}
	}
	queries := []search.Query{{Text: "ali"}, {Text: "jon"}, {Text: "grace wil"}, {Text: "thompsn"}, {Text: "example.com", Limit: 100}}
	for _, q := range queries {
		r, err := x.Search(b.Context(), q)
		if err != nil || r.Total == 0 {
			b.Fatalf("Search(%+v) = %+v, %v", q, r, err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := x.Search(b.Context(), queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
}
