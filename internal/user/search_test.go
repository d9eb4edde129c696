package user_test

import (
	"context"
	"errors"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// fakeSearcher stands in for the search index (a port fake: the index has
// its own contract suite); it returns fixed pages of IDs.
type fakeSearcher struct {
	pages map[string]user.SearchResult // by After
	err   error
	got   []user.SearchQuery
}

func (f *fakeSearcher) SearchUsers(_ context.Context, q user.SearchQuery) (user.SearchResult, error) {
	f.got = append(f.got, q)
	if f.err != nil {
		return user.SearchResult{}, f.err
	}
	return f.pages[q.After], nil
}

func TestListUsesSearchForText(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	a := e.create(t, "alice@example.com", user.RoleUser)
	b := e.create(t, "alicia@example.com", user.RoleUser)
	fs := &fakeSearcher{pages: map[string]user.SearchResult{
		"":      {IDs: []string{b.ID, "0190a8e4-0000-7000-8000-000000000000"}, Total: 3, Next: "p2"},
		"p2":    {IDs: []string{a.ID}, Total: 3},
		"other": {},
	}}
	svc := e.withSearcher(t, fs)
	p, err := svc.List(ctx, actorOf(admin), user.ListInput{Query: "alcie", PageSize: 2, Role: user.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Users) != 1 || p.Users[0].ID != b.ID || p.Total != 3 || p.NextCursor == "" {
		t.Fatalf("first search page: %+v", p)
	}
	if q := fs.got[0]; q.Text != "alcie" || q.Role != user.RoleUser || q.Limit != 2 {
		t.Fatalf("query passed to the index: %+v", q)
	}
	p2, err := svc.List(ctx, actorOf(admin), user.ListInput{Query: "alcie", PageSize: 2, Cursor: p.NextCursor})
	if err != nil || len(p2.Users) != 1 || p2.Users[0].ID != a.ID || p2.NextCursor != "" {
		t.Fatalf("second search page: %v %+v", err, p2)
	}
	_, err = svc.List(ctx, actorOf(admin), user.ListInput{Query: "alcie", Page: 2})
	wantCode(t, err, user.CodeInvalidArgument)

	// Index down: the database answers (prefix match).
	fs.err = errors.New("index unavailable")
	p3, err := svc.List(ctx, actorOf(admin), user.ListInput{Query: "alic"})
	if err != nil || p3.Total != 2 {
		t.Fatalf("fallback: %v %+v", err, p3)
	}
	_, err = svc.List(ctx, actorOf(admin), user.ListInput{Query: "alic", Cursor: p.NextCursor})
	wantCode(t, err, user.CodeInvalidArgument)
}
