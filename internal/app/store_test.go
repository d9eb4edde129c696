package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/usersvc/usersvc/internal/config"
)

// TestSQLiteFilesPrivate: the embedded database's files (the database and
// its WAL and shared-memory files) are 0600 and the data dir 0700, also
// when an older version left them 0644 and 0755.
func TestSQLiteFilesPrivate(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(dir string)
	}{
		{"fresh", func(string) {}},
		{"left open by an older version", func(dir string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "usersvc.db"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		tc.prep(dir)
		st, err := OpenStore(t.Context(), &config.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		// A write, so the WAL and shared-memory files exist too.
		if _, err := st.DB().ExecContext(t.Context(), "CREATE TABLE probe (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: data dir: %v %v, want 0700", tc.name, fi.Mode().Perm(), err)
		}
		for _, f := range []string{"usersvc.db", "usersvc.db-wal", "usersvc.db-shm"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s: %v %v, want 0600", tc.name, f, fi.Mode().Perm(), err)
			}
		}
		_ = st.Close()
	}
}
