package cache

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

// openDB opens a migrated SQLite store in a temp dir, closed at the end.
func openDB(t testing.TB) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// backendKind builds a fresh backend of one kind for a test.
type backendKind struct {
	name string
	new  func(t testing.TB) Backend
}

var backendKinds = []backendKind{
	{"redis", func(t testing.TB) Backend {
		c, prefix := testenv.RedisClient(t)
		return NewRedis(c, prefix)
	}},
	{"local", func(testing.TB) Backend { return NewLocal(0) }},
}

// eachBackend runs fn as a subtest per backend kind.
func eachBackend(t *testing.T, fn func(t *testing.T, kind backendKind)) {
	for _, k := range backendKinds {
		t.Run(k.name, func(t *testing.T) { fn(t, k) })
	}
}

func createUser(t testing.TB, s user.Repo, name string) *user.User {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u := &user.User{ID: id.String(), Email: "u-" + id.String() + "@example.com", Name: name, Role: user.RoleUser,
		Status: user.StatusActive, PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", SessionVersion: 1,
		CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func mustGet(t testing.TB, s user.Repo, id string) *user.User {
	t.Helper()
	u, err := s.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

// rename renames the user through s, reading the current row from s.
func rename(t testing.TB, s user.Repo, id, name string) {
	t.Helper()
	renameFrom(t, s, s, id, name)
}

// renameFrom renames the user through s, reading the current row from
// read (the database itself, when a read through s would block on a held
// load).
func renameFrom(t testing.TB, s, read user.Repo, id, name string) {
	t.Helper()
	u := mustGet(t, read, id)
	u.Name = name
	u.UpdatedAt = time.Now()
	if err := s.UpdateUser(context.Background(), u); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
}

func stateOf(t testing.TB, b Backend, id string) State {
	t.Helper()
	st, _, err := b.Get(context.Background(), userKey(id))
	if err != nil {
		t.Fatalf("backend get: %v", err)
	}
	return st
}

// probe wraps the inner store to count UserByID loads, hold a load after it
// has read the database (to reproduce races deterministically), or slow
// every load down a little (to make races likely).
type probe struct {
	user.Store
	loads atomic.Int64
	delay func()
	mu    sync.Mutex
	gates map[string]*gate
}

type gate struct {
	loaded  chan *user.User // the row the held load read (nil if held before reading)
	release chan struct{}
	before  bool // hold before reading the database instead of after
}

func newProbe(inner user.Store) *probe { return &probe{Store: inner, gates: map[string]*gate{}} }

// hold makes the next UserByID of id stop after reading the database until
// release is closed; it reports the row read on loaded.
func (p *probe) hold(id string) *gate {
	g := &gate{loaded: make(chan *user.User, 1), release: make(chan struct{})}
	p.mu.Lock()
	p.gates[id] = g
	p.mu.Unlock()
	return g
}

// holdBefore is hold, but the load stops before reading the database.
func (p *probe) holdBefore(id string) *gate {
	g := p.hold(id)
	g.before = true
	return g
}

func (p *probe) UserByID(ctx context.Context, id string) (*user.User, error) {
	p.loads.Add(1)
	p.mu.Lock()
	g := p.gates[id]
	delete(p.gates, id)
	p.mu.Unlock()
	if g != nil && g.before {
		g.loaded <- nil
		<-g.release
	}
	u, err := p.Store.UserByID(ctx, id)
	if g != nil && !g.before {
		g.loaded <- u
		<-g.release
	}
	if p.delay != nil {
		p.delay()
	}
	return u, err
}

// put stores val under key the way the Store fills (a lease, then the
// fill), reporting whether it could: only when the key was Missing.
func put(t testing.TB, b Backend, key string, val []byte, ttl time.Duration) bool {
	t.Helper()
	ctx := context.Background()
	token, err := b.Lease(ctx, key, time.Minute)
	if err != nil {
		t.Fatalf("Lease(%s): %v", key, err)
	}
	if token == nil {
		return false
	}
	ok, err := b.Fill(ctx, key, token, val, ttl)
	if err != nil {
		t.Fatalf("Fill(%s): %v", key, err)
	}
	return ok
}

// flaky is a Backend that fails every call while down, standing in for an
// unreachable server in front of a Local backend.
type flaky struct {
	Backend
	down atomic.Bool
}

var errFlaky = errors.New("flaky: backend down")

func (f *flaky) Get(ctx context.Context, key string) (State, []byte, error) {
	if f.down.Load() {
		return Missing, nil, errFlaky
	}
	return f.Backend.Get(ctx, key)
}

func (f *flaky) Lease(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if f.down.Load() {
		return nil, errFlaky
	}
	return f.Backend.Lease(ctx, key, ttl)
}

func (f *flaky) Fill(ctx context.Context, key string, token, v []byte, ttl time.Duration) (bool, error) {
	if f.down.Load() {
		return false, errFlaky
	}
	return f.Backend.Fill(ctx, key, token, v, ttl)
}

func (f *flaky) Tombstone(ctx context.Context, ttl time.Duration, keys ...string) error {
	if f.down.Load() {
		return errFlaky
	}
	return f.Backend.Tombstone(ctx, ttl, keys...)
}

func (f *flaky) Flush(ctx context.Context, ttl time.Duration) error {
	if f.down.Load() {
		return errFlaky
	}
	return f.Backend.Flush(ctx, ttl)
}

func (f *flaky) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errFlaky
	}
	return f.Backend.Ping(ctx)
}

func newLog() (*slog.Logger, *testenv.LogBuffer) {
	b := &testenv.LogBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// readWhileHeld reads id through s while g holds another load, then
// releases g. A read that joins the held load would wait for the release;
// after a second it is released anyway and the test fails, instead of
// deadlocking.
func readWhileHeld(t *testing.T, s user.Repo, id string, g *gate) *user.User {
	t.Helper()
	type result struct {
		u   *user.User
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, err := s.UserByID(context.Background(), id)
		done <- result{u, err}
	}()
	var r result
	select {
	case r = <-done:
		close(g.release)
	case <-time.After(time.Second):
		t.Error("read waited for a load that began before the write (joined it)")
		close(g.release)
		r = <-done
	}
	if r.err != nil {
		t.Fatalf("UserByID: %v", r.err)
	}
	return r.u
}
