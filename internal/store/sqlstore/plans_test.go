package sqlstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// explain returns the query plan of a statement, one line per plan row.
func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	prefix := "EXPLAIN "
	if s.d == sqliteDialect {
		prefix = "EXPLAIN QUERY PLAN "
	}
	rows, err := s.DB().QueryContext(t.Context(), prefix+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%s=%v ", cols[i], v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestQueryPlans pins the plans the package's performance rests on: a
// cursor page is a range seek (its cost does not grow with depth), a
// filtered cursor page seeks the (filter, id) index, and the prefix search
// uses the email and name indexes rather than scanning the table.
func TestQueryPlans(t *testing.T) {
	dialects(t, func(t *testing.T, driver, dsn string) {
		s := openTest(t, driver, dsn, true)
		ids := seedUsers(t, s, 20_000)
		if driver == "mysql" {
			if _, err := s.DB().ExecContext(t.Context(), "ANALYZE TABLE users"); err != nil {
				t.Fatal(err)
			}
		}
		// want[driver] are substrings that must all appear in the plan.
		for _, tc := range []struct {
			name string
			sql  func() (string, []any)
			want map[string][]string
		}{
			{"deep cursor", func() (string, []any) {
				l := buildList(user.ListQuery{AfterID: ids[19_000], Limit: 21})
				return l.pageSQL, l.pageArgs
			}, map[string][]string{
				"sqlite": {"SEARCH users USING PRIMARY KEY (id>?)"},
				"mysql":  {"type=range", "key=PRIMARY "},
			}},
			{"filtered cursor", func() (string, []any) {
				l := buildList(user.ListQuery{Role: user.RoleAdmin, AfterID: ids[19_000], Limit: 21})
				return l.pageSQL, l.pageArgs
			}, map[string][]string{
				"sqlite": {"USING INDEX ix_users_role_id (role=? AND id>?)"},
				"mysql":  {"type=range", "key=ix_users_role_id "},
			}},
			{"prefix count", func() (string, []any) {
				l := buildList(user.ListQuery{Prefix: "bench user 0199", Limit: 21})
				return l.countSQL, l.countArgs
			}, map[string][]string{
				"sqlite": {"ix_users_email_nocase (email>? AND email<?)", "ix_users_name_lower (name_lower>? AND name_lower<?)"},
				"mysql":  {"uq_users_email", "ix_users_name_lower", "index_merge"},
			}},
			{"user by id", func() (string, []any) {
				return `SELECT ` + userCols + ` FROM users WHERE id = ?`, []any{ids[7]}
			}, map[string][]string{
				"sqlite": {"SEARCH users USING PRIMARY KEY (id=?)"},
				"mysql":  {"type=const", "key=PRIMARY "},
			}},
			{"user by email", func() (string, []any) {
				return `SELECT ` + userCols + ` FROM users WHERE email = ?`, []any{"user000007@example.com"}
			}, map[string][]string{
				"sqlite": {"USING INDEX uq_users_email (email=?)"},
				"mysql":  {"type=const", "key=uq_users_email "},
			}},
		} {
			query, args := tc.sql()
			plan := explain(t, s, query, args...)
			for _, want := range tc.want[driver] {
				if !strings.Contains(plan, want) {
					t.Errorf("%s: plan lacks %q:\n%s", tc.name, want, plan)
				}
			}
		}
	})
}
