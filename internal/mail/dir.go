package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// emlSuffix marks finished messages; temporary files never carry it, so
// ReadDir (or a human with a mail client) only ever sees complete messages.
const (
	emlSuffix  = ".eml"
	tempPrefix = ".tmp-"
	// fileTimeFormat is fixed-width (trailing zeros kept) so that file names
	// sort in the order the messages were written.
	fileTimeFormat = "20060102T150405.000000000Z"
)

// Dir is a Sender that writes each message as an .eml file into a
// directory. It is the embedded default (no mail server needed in
// development) and lets tests of other packages read what was "sent" with
// ReadDir. Messages can contain reset tokens, so the directory is 0700 and
// the files 0600. Dir is safe for concurrent use.
type Dir struct {
	dir string

	mu   sync.Mutex
	last time.Time // newest timestamp handed out, to keep names strictly ordered
}

// NewDir returns a Dir writing into dir, creating it (and its parents) with
// mode 0700 if needed. The mode of an existing directory is left alone.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("mail: dir: directory must not be empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail: dir: create %s: %w", dir, err)
	}
	return &Dir{dir: dir}, nil
}

// Path returns the directory messages are written to.
func (d *Dir) Path() string { return d.dir }

// Send writes m to <dir>/<UTC timestamp>-<random>.eml.
//
// The message is written to a temporary file in the same directory, synced
// and then renamed into place; rename within one file system is atomic, so
// a concurrent reader sees either no file or the complete message, and a
// crash never leaves a truncated .eml behind.
func (d *Dir) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: dir %s: %w", d.dir, err)
	}
	now := d.timestamp()
	data, err := m.Bytes(now)
	if err != nil {
		return err
	}
	name := filepath.Join(d.dir, now.Format(fileTimeFormat)+"-"+rand.Text()+emlSuffix)
	if err := writeFileAtomic(name, data); err != nil {
		return fmt.Errorf("mail: dir %s: %w", d.dir, err)
	}
	return nil
}

// timestamp returns the current UTC time, but strictly after the previous
// one, so messages sent by this Dir in quick succession (or on a platform
// with a coarse clock) still sort in sending order by file name.
func (d *Dir) timestamp() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := time.Now().UTC().Round(0) // Round(0) drops the monotonic reading
	if !t.After(d.last) {
		t = d.last.Add(time.Nanosecond)
	}
	d.last = t
	return t
}

// writeFileAtomic writes data to name via a temporary file and rename.
// os.CreateTemp creates the file with mode 0600.
func writeFileAtomic(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// Without the sync a crash shortly after the rename could leave an
	// empty file under the final name on some file systems.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}
