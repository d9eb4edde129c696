package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

// benchUsers is the table size the list benchmarks run against.
const benchUsers = 100_000

// benchPageSize is what the domain asks for: a page of 20 plus one to see
// whether there is a next page.
const benchPageSize = 21

// benchDeep is the depth of the "deep" page benchmarks, near the end of the
// table.
const benchDeep = 99_900

// benchHash stands in for a password hash: seeding must not spend minutes in
// argon2id.
const benchHash = "$argon2id$v=19$m=65536,t=3,p=2$YmVuY2hzYWx0YmVuY2g$" +
	"3rZs9hUeVwq0Y0m0b3yL6p8cVv1sXcJ2dQ2jVQ3Yk1E"

// benchDB is a store holding benchUsers users; ids are in ID order.
type benchDB struct {
	s   *Store
	ids []string
}

// benchDialects runs fn as a sub-benchmark per database, on a database
// seeded once for it. fn must use b.Loop, which runs the function (and so
// the seeding) once per measurement rather than once per b.N ramp step.
func benchDialects(b *testing.B, fn func(b *testing.B, db benchDB)) {
	for _, driver := range []string{"sqlite", "mysql"} {
		b.Run(driver, func(b *testing.B) {
			var dsn string
			if driver == "sqlite" {
				dsn = sqliteTestDSN(b)
			} else {
				dsn = testenv.MySQLDSN(b)
			}
			s := openTest(b, driver, dsn, true)
			start := time.Now()
			ids := seedUsers(b, s, benchUsers)
			b.Logf("seeded %d users in %v", benchUsers, time.Since(start).Round(time.Millisecond))
			fn(b, benchDB{s: s, ids: ids})
		})
	}
}

// seedUsers bulk-inserts n users in one transaction with multi-row INSERTs
// and returns their IDs in order. Every 10th user is an admin and every 7th
// is disabled, so the filters have something to select.
func seedUsers(tb testing.TB, s *Store, n int) []string {
	tb.Helper()
	const batch = 500 // 10 columns: 5,000 placeholders per statement
	ctx := context.Background()
	ids := make([]string, n)
	now := time.Now()
	err := s.Atomic(ctx, func(r user.Repo) error {
		q := r.(repo).q
		row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			var sb strings.Builder
			sb.WriteString(`INSERT INTO users
(id, email, name, name_lower, role, status, password_hash, session_version, created_at, updated_at) VALUES `)
			args := make([]any, 0, (hi-lo)*10)
			for i := lo; i < hi; i++ {
				id, err := uuid.NewV7()
				if err != nil {
					return err
				}
				ids[i] = id.String()
				if i > lo {
					sb.WriteByte(',')
				}
				sb.WriteString(row)
				role, status := user.RoleUser, user.StatusActive
				if i%10 == 0 {
					role = user.RoleAdmin
				}
				if i%7 == 0 {
					status = user.StatusDisabled
				}
				name := fmt.Sprintf("Bench User %06d", i)
				at := s.d.timeArg(now.Add(time.Duration(i) * time.Millisecond))
				args = append(args, ids[i], fmt.Sprintf("user%06d@example.com", i), name, nameKey(name),
					string(role), string(status), benchHash, int64(1), at, at)
			}
			if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed users: %v", err)
	}
	return ids
}

func BenchmarkUserByID(b *testing.B) {
	benchDialects(b, func(b *testing.B, db benchDB) {
		ctx := b.Context()
		i := 0
		for b.Loop() {
			i = (i + 7919) % len(db.ids) // stride over the table, not one hot row
			if _, err := db.s.UserByID(ctx, db.ids[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchList measures ListUsers as the domain calls it (the page plus the
// total), and under "page" the page query alone, which is what depth
// affects; the difference is the COUNT(*) over the filtered table.
func benchList(b *testing.B, q func(db benchDB) user.ListQuery) {
	benchDialects(b, func(b *testing.B, db benchDB) {
		lq := q(db)
		b.Run("list", func(b *testing.B) {
			ctx := b.Context()
			for b.Loop() {
				us, total, err := db.s.ListUsers(ctx, lq)
				if err != nil {
					b.Fatal(err)
				}
				if len(us) != benchPageSize || total != benchUsers {
					b.Fatalf("got %d users, total %d", len(us), total)
				}
			}
		})
		b.Run("page", func(b *testing.B) {
			ctx := b.Context()
			sq := buildList(lq)
			for b.Loop() {
				us, err := db.s.queryUsers(ctx, sq.pageSQL, sq.pageArgs...)
				if err != nil {
					b.Fatal(err)
				}
				if len(us) != benchPageSize {
					b.Fatalf("got %d users", len(us))
				}
			}
		})
	})
}

func BenchmarkListFirstPage(b *testing.B) {
	benchList(b, func(benchDB) user.ListQuery { return user.ListQuery{Limit: benchPageSize} })
}

func BenchmarkListDeepCursor(b *testing.B) {
	benchList(b, func(db benchDB) user.ListQuery {
		return user.ListQuery{AfterID: db.ids[benchDeep-1], Limit: benchPageSize}
	})
}

func BenchmarkListDeepOffset(b *testing.B) {
	benchList(b, func(benchDB) user.ListQuery { return user.ListQuery{Offset: benchDeep, Limit: benchPageSize} })
}
