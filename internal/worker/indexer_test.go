package worker_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/bleveindex"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

// The indexer runs here against the real embedded index (bleve in a temp
// dir); Reindex against the real store.

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	idAda  = "0195500a-0000-7000-8000-00000000000a"
	idBert = "0195500a-0000-7000-8000-00000000000b"
)

// userEvent builds a created or updated event for id as of at.
func userEvent(typ user.EventType, id, name, email string, at time.Time) user.Event {
	return user.Event{ID: fmt.Sprintf("ev-%s-%d", id[len(id)-4:], at.UnixMicro()), Type: typ, OccurredAt: at, UserID: id,
		User: &user.EventUser{ID: id, Email: email, Name: name, Role: user.RoleUser, Status: user.StatusActive,
			CreatedAt: t0, UpdatedAt: at}}
}

func deletedEvent(id string, at time.Time) user.Event {
	return user.Event{ID: fmt.Sprintf("del-%s-%d", id[len(id)-4:], at.UnixMicro()), Type: user.EventDeleted, OccurredAt: at, UserID: id}
}

// deliver runs the handler on e and fails the test on an error.
func deliver(t *testing.T, ctx context.Context, h events.Handler, e user.Event) {
	t.Helper()
	if err := h(ctx, message(t, e)); err != nil {
		t.Fatalf("indexer on %s of %s at %v: %v", e.Type, e.UserID, e.OccurredAt, err)
	}
}

func expectFound(t *testing.T, ctx context.Context, idx search.Index, text string, want ...string) {
	t.Helper()
	got := find(t, ctx, idx, text)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("search %q = %v, want %v", text, got, want)
	}
}

// TestIndexerKeepsNewestVersion: created makes a user searchable, a newer
// update replaces the document, a late older update changes nothing, a
// delete removes it for good (an older create delivered afterwards does not
// bring it back), and redeliveries are harmless. Other users are untouched.
func TestIndexerKeepsNewestVersion(t *testing.T) {
	ctx := testenv.Context(t)
	idx := openIndex(t)
	h := worker.Indexer(idx)

	created := userEvent(user.EventCreated, idAda, "Ada Anderson", "ada@example.com", t0)
	deliver(t, ctx, h, created)
	deliver(t, ctx, h, userEvent(user.EventCreated, idBert, "Bert Anderson", "bert@example.com", t0.Add(time.Millisecond)))
	expectFound(t, ctx, idx, "ada", idAda)
	expectFound(t, ctx, idx, "anderson", idAda, idBert)
	expectFound(t, ctx, idx, "ada@example.com", idAda)

	deliver(t, ctx, h, created) // redelivered
	expectFound(t, ctx, idx, "anderson", idAda, idBert)

	renamed := userEvent(user.EventUpdated, idAda, "Ada Lovelace", "ada@example.com", t0.Add(2*time.Second))
	deliver(t, ctx, h, renamed)
	expectFound(t, ctx, idx, "lovelace", idAda)
	expectFound(t, ctx, idx, "anderson", idBert)

	// An update from between the two, delivered late.
	late := userEvent(user.EventUpdated, idAda, "Ada Byron", "ada.byron@example.com", t0.Add(time.Second))
	deliver(t, ctx, h, late)
	expectFound(t, ctx, idx, "byron")
	expectFound(t, ctx, idx, "lovelace", idAda)

	// Password events change nothing searchable.
	deliver(t, ctx, h, user.Event{ID: "pc", Type: user.EventPasswordChanged, OccurredAt: t0.Add(3 * time.Second), UserID: idAda})
	deliver(t, ctx, h, user.Event{ID: "prr", Type: user.EventPasswordResetRequested, OccurredAt: t0.Add(3 * time.Second), UserID: idAda,
		Reset: &user.EventReset{Email: "ada@example.com", Token: "t", ExpiresAt: t0.Add(time.Hour)}})
	expectFound(t, ctx, idx, "lovelace", idAda)

	deleted := deletedEvent(idAda, t0.Add(4*time.Second))
	deliver(t, ctx, h, deleted)
	expectFound(t, ctx, idx, "lovelace")
	expectFound(t, ctx, idx, "ada")
	expectFound(t, ctx, idx, "", idBert)

	// Late or repeated events of the deleted user do not resurrect it.
	deliver(t, ctx, h, created)
	deliver(t, ctx, h, renamed)
	deliver(t, ctx, h, userEvent(user.EventUpdated, idAda, "Ada Ghost", "ada@example.com", t0.Add(3*time.Second)))
	deliver(t, ctx, h, deleted)
	expectFound(t, ctx, idx, "ada")
	expectFound(t, ctx, idx, "ghost")
	expectFound(t, ctx, idx, "", idBert)

	// A delete that overtook its create is fine too.
	deliver(t, ctx, h, deletedEvent(idBert, t0.Add(time.Hour)))
	deliver(t, ctx, h, deletedEvent("0195500a-0000-7000-8000-0000000000ff", t0))
	expectFound(t, ctx, idx, "")
}

// TestIndexerIgnoresEventsWithoutUser: a created event without its user
// has nothing to index and is acknowledged.
func TestIndexerIgnoresEventsWithoutUser(t *testing.T) {
	ctx := testenv.Context(t)
	idx := openIndex(t)
	e := userEvent(user.EventCreated, idAda, "Ada", "ada@example.com", t0)
	e.User = nil
	deliver(t, ctx, worker.Indexer(idx), e)
	expectFound(t, ctx, idx, "")
}

// TestIndexerPermanentErrors: a body that does not parse, or a document or
// deletion no index accepts (no ID, no usable version, an oversized ID), is a
// permanent error; an index that cannot be written is not.
func TestIndexerPermanentErrors(t *testing.T) {
	ctx := testenv.Context(t)
	idx := openIndex(t)
	h := worker.Indexer(idx)

	epoch := time.Unix(0, 0).UTC() // version 0
	longID := strings.Repeat("x", search.MaxIDLength+1)
	noID := userEvent(user.EventCreated, idAda, "Ada", "ada@example.com", t0)
	noID.UserID = ""
	noIDAnywhere := noID
	noIDAnywhere.User = &user.EventUser{Name: "Ada", Email: "ada@example.com"}

	cases := []struct {
		name       string
		m          events.Message
		invalidDoc bool // the index itself refused it
	}{
		{"not JSON", events.Message{ID: "x", RoutingKey: string(user.EventCreated), Body: []byte("{")}, false},
		{"no body", events.Message{ID: "x", RoutingKey: string(user.EventCreated)}, false},
		{"created without user ID", message(t, noID), false},
		{"created without any ID", message(t, noIDAnywhere), false},
		{"deleted without user ID", message(t, user.Event{ID: "d", Type: user.EventDeleted, OccurredAt: t0}), false},
		{"created at version 0", message(t, userEvent(user.EventCreated, idAda, "Ada", "ada@example.com", epoch)), true},
		{"updated before 1970", message(t, userEvent(user.EventUpdated, idAda, "Ada", "ada@example.com", epoch.Add(-time.Hour))), true},
		{"deleted at version 0", message(t, deletedEvent(idAda, epoch)), true},
		{"created with oversized ID", message(t, userEvent(user.EventCreated, longID, "Ada", "ada@example.com", t0)), true},
		{"deleted with oversized ID", message(t, deletedEvent(longID, t0)), true},
	}
	for _, tc := range cases {
		err := h(ctx, tc.m)
		if !events.IsPermanent(err) {
			t.Errorf("%s: indexer = %v, want a permanent error", tc.name, err)
		}
		if tc.invalidDoc && !errors.Is(err, search.ErrInvalidDoc) {
			t.Errorf("%s: indexer = %v, want it to wrap search.ErrInvalidDoc", tc.name, err)
		}
	}
	expectFound(t, ctx, idx, "")

	// An index that cannot be written (closed here; down in production) is
	// worth retrying.
	broken, err := bleveindex.Open(filepath.Join(t.TempDir(), "closed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := broken.Close(); err != nil {
		t.Fatal(err)
	}
	err = worker.Indexer(broken)(ctx, message(t, userEvent(user.EventCreated, idAda, "Ada", "ada@example.com", t0)))
	if err == nil || events.IsPermanent(err) {
		t.Errorf("indexer on a closed index = %v, want a retryable error", err)
	}
}

// TestReindex: Reindex upserts every user of the store and reports how
// many; it does not overwrite what a newer event already indexed.
func TestReindex(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	var ids []string
	for _, u := range []struct{ email, name string }{
		{"grace@example.com", "Grace Hopper"},
		{"alan@example.com", "Alan Turing"},
		{"edsger@example.com", "Edsger Dijkstra"},
	} {
		created, err := st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: u.email, Password: pw, Name: u.name})
		if err != nil {
			t.Fatalf("create %s: %v", u.email, err)
		}
		ids = append(ids, created.ID)
	}
	idx := openIndex(t)

	// A newer change of Alan's than the database row, already indexed.
	newer := userEvent(user.EventUpdated, ids[1], "Alan Newer", "alan@example.com", time.Now().Add(time.Hour))
	deliver(t, ctx, worker.Indexer(idx), newer)

	n, err := worker.Reindex(ctx, st.Store, idx)
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	if n != 3 {
		t.Errorf("Reindex indexed %d users, want 3", n)
	}
	expectFound(t, ctx, idx, "", ids...)
	expectFound(t, ctx, idx, "hopper", ids[0])
	expectFound(t, ctx, idx, "edsger@example.com", ids[2])
	expectFound(t, ctx, idx, "newer", ids[1])
	expectFound(t, ctx, idx, "turing")

	// Reindexing again is harmless.
	if n, err := worker.Reindex(ctx, st.Store, idx); err != nil || n != 3 {
		t.Errorf("second Reindex = %d, %v; want 3, nil", n, err)
	}
	expectFound(t, ctx, idx, "", ids...)

	// An empty store indexes nothing.
	empty := stack.New(t, stack.Options{NoEvents: true})
	if n, err := worker.Reindex(ctx, empty.Store, openIndex(t)); err != nil || n != 0 {
		t.Errorf("Reindex of an empty store = %d, %v; want 0, nil", n, err)
	}
}

// TestReindexPages: more users than one page of the store (500) are all
// indexed.
func TestReindexPages(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	const total = 1203
	now := time.Now().UTC()
	err := st.Store.Atomic(ctx, func(r user.Repo) error {
		for i := range total {
			name := fmt.Sprintf("Bulk User %d", i)
			if i == total-1 {
				name = "Omega Finalperson"
			}
			u := &user.User{ID: fmt.Sprintf("0195500a-0000-7000-8000-%012d", i), Email: fmt.Sprintf("u%d@example.com", i),
				Name: name, Role: user.RoleUser, Status: user.StatusActive,
				PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
			if err := r.CreateUser(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert users: %v", err)
	}
	idx := openIndex(t)
	n, err := worker.Reindex(ctx, st.Store, idx)
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	if n != total {
		t.Errorf("Reindex indexed %d users, want %d", n, total)
	}
	r, err := search.Searcher{Index: idx}.SearchUsers(ctx, user.SearchQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != total {
		t.Errorf("index holds %d users, want %d", r.Total, total)
	}
	if got := find(t, ctx, idx, ""); len(got) != total {
		t.Errorf("listing the index returned %d users, want %d", len(got), total)
	}
	expectFound(t, ctx, idx, "finalperson", "0195500a-0000-7000-8000-000000001202") // on the last page
}

// TestSearcherAdapter: the Searcher passes the query through and returns the
// index's IDs, total and cursor; invalid queries keep their error.
func TestSearcherAdapter(t *testing.T) {
	ctx := testenv.Context(t)
	idx := openIndex(t)
	var docs []search.Doc
	for i, name := range []string{"Sam One", "Sam Two", "Sam Three", "Other Person"} {
		role := user.RoleUser
		if i == 1 {
			role = user.RoleAdmin
		}
		docs = append(docs, search.Doc{Snapshot: user.Snapshot{ID: fmt.Sprintf("0195500a-0000-7000-8000-%012d", i),
			Email: fmt.Sprintf("p%d@example.com", i), Name: name, Role: role, Status: user.StatusActive,
			CreatedAt: t0, UpdatedAt: t0}, Version: t0.UnixMicro()})
	}
	if err := idx.Upsert(ctx, docs...); err != nil {
		t.Fatal(err)
	}
	s := search.Searcher{Index: idx}

	p1, err := s.SearchUsers(ctx, user.SearchQuery{Text: "sam", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.IDs) != 2 || p1.Total != 3 || p1.Next == "" {
		t.Fatalf("first page = %+v, want 2 IDs, Total 3 and a cursor", p1)
	}
	direct, err := idx.Search(ctx, search.Query{Text: "sam", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p1.IDs, direct.IDs) || p1.Total != direct.Total || p1.Next != direct.Next {
		t.Errorf("adapter returned %+v, the index %+v", p1, direct)
	}
	p2, err := s.SearchUsers(ctx, user.SearchQuery{Text: "sam", Limit: 2, After: p1.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.IDs) != 1 || p2.Total != 3 || p2.Next != "" {
		t.Fatalf("second page = %+v, want 1 ID, Total 3, no cursor", p2)
	}
	all := append(slices.Clone(p1.IDs), p2.IDs...)
	slices.Sort(all)
	if want := []string{docs[0].ID, docs[1].ID, docs[2].ID}; !slices.Equal(all, want) {
		t.Errorf("pages together = %v, want %v", all, want)
	}

	admins, err := s.SearchUsers(ctx, user.SearchQuery{Text: "sam", Role: user.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(admins.IDs, []string{docs[1].ID}) || admins.Total != 1 {
		t.Errorf("role filter = %+v, want only %s", admins, docs[1].ID)
	}
	if r, err := s.SearchUsers(ctx, user.SearchQuery{Text: "sam", Status: user.StatusDisabled}); err != nil || len(r.IDs) != 0 || r.Total != 0 {
		t.Errorf("status filter = %+v, %v; want no match", r, err)
	}

	for name, q := range map[string]user.SearchQuery{
		"limit too large": {Limit: search.MaxLimit + 1},
		"unknown role":    {Role: "root"},
		"foreign cursor":  {Text: "other", After: p1.Next},
	} {
		r, err := s.SearchUsers(ctx, q)
		if !errors.Is(err, search.ErrInvalidQuery) {
			t.Errorf("%s: SearchUsers = %+v, %v; want search.ErrInvalidQuery", name, r, err)
		}
		if len(r.IDs) != 0 || r.Total != 0 || r.Next != "" {
			t.Errorf("%s: SearchUsers returned a result with its error: %+v", name, r)
		}
	}
}

// TestSubscriptionsCarryUserEvents runs the real pipeline of the embedded
// mode — outbox relay, in-process bus, both consumers on their declared
// subscriptions — and checks each consumer gets the events it needs.
func TestSubscriptionsCarryUserEvents(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	idx := openIndex(t)
	mf := &mailFixture{st: st, dir: t.TempDir()}
	sender, err := mail.NewDir(mf.dir)
	if err != nil {
		t.Fatal(err)
	}
	rm := mail.ResetMailer{Sender: sender, From: "usersvc <no-reply@example.com>", PublicURL: "http://127.0.0.1:8080"}

	runCtx, cancel := context.WithCancel(ctx)
	bus := events.NewBus(quietLog())
	bus.Declare(worker.MailerSubscription)
	bus.Declare(worker.IndexerSubscription)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = (&events.Relay{Outbox: st.Store, Publisher: bus, Log: quietLog(), Interval: 5 * time.Millisecond}).Run(runCtx)
	})
	wg.Go(func() {
		_ = bus.Consume(runCtx, worker.MailerSubscription, worker.Mailer(st.Store, rm, time.Now, quietLog()))
	})
	wg.Go(func() { _ = bus.Consume(runCtx, worker.IndexerSubscription, worker.Indexer(idx)) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	u, err := st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: "pipe@example.com", Password: pw, Name: "Pipe Line"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: "other@example.com", Password: pw, Name: "Other One"})
	if err != nil {
		t.Fatal(err)
	}
	name := "Pipe Renamed"
	if _, err := st.Service.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := st.Service.CreatePasswordReset(ctx, "pipe@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := st.Service.Delete(ctx, user.SystemActor, other.ID); err != nil {
		t.Fatal(err)
	}

	// Both sign-ups are mailed a verification too.
	testenv.Eventually(t, 10*time.Second, "the reset and verification mails", func() bool { return len(mf.mails(t)) == 3 })
	testenv.Eventually(t, 10*time.Second, "the index to show the rename and the delete", func() bool {
		return slices.Equal(find(t, ctx, idx, ""), []string{u.ID}) && slices.Equal(find(t, ctx, idx, "renamed"), []string{u.ID})
	})
	var reset mail.Stored
	for _, m := range mf.mails(t) {
		if m.Subject() == "Reset your password" {
			reset = m
		}
	}
	if tok := mail.ResetToken(reset.Text); tok == "" {
		t.Error("reset mail without a token")
	} else if err := st.Service.ResetPassword(ctx, tok, "a brand new passphrase"); err != nil {
		t.Errorf("ResetPassword with the mailed token: %v", err)
	}
	for _, q := range []string{worker.MailerSubscription.Queue, worker.IndexerSubscription.Queue} {
		if dl := bus.DeadLetters(q); len(dl) != 0 {
			t.Errorf("dead letters on %s: %v", q, dl)
		}
	}
}
