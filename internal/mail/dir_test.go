package mail

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustNewDir(t *testing.T) (*Dir, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool", "mail")
	d, err := NewDir(dir)
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	return d, dir
}

func mustReadDir(t *testing.T, dir string) []Stored {
	t.Helper()
	msgs, err := ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	return msgs
}

func TestDirSendWritesPrivateEMLFile(t *testing.T) {
	d, dir := mustNewDir(t)
	if d.Path() != dir {
		t.Errorf("Path() = %q, want %q", d.Path(), dir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %o, want 700", perm)
	}

	m := testMessage()
	if err := d.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want exactly one .eml (no temp files left): %v", len(entries), entries)
	}
	nameRE := regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-[A-Z2-7]+\.eml$`)
	if name := entries[0].Name(); !nameRE.MatchString(name) {
		t.Errorf("file name %q does not match <UTC timestamp>-<random>.eml", name)
	}
	info, err := entries[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}

	msgs := mustReadDir(t, dir)
	if len(msgs) != 1 {
		t.Fatalf("ReadDir returned %d messages", len(msgs))
	}
	got := msgs[0]
	if got.Path != filepath.Join(dir, entries[0].Name()) {
		t.Errorf("Path = %q", got.Path)
	}
	if got.Text != m.Text || got.Subject() != m.Subject || got.Header.Get("To") != `"Jane Doe" <jane@example.org>` {
		t.Errorf("read back %+v", got)
	}
}

func TestDirResetMailRoundTrip(t *testing.T) {
	d, dir := mustNewDir(t)
	r := ResetMailer{
		Sender:    d,
		From:      "User Service <noreply@example.com>",
		PublicURL: "http://127.0.0.1:8080/",
		TTL:       30 * time.Minute,
	}
	token := "t0k+en/with=odd&chars é?#"
	if err := r.SendPasswordReset(t.Context(), "jane@example.org", "Jane Doe", token); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	msgs := mustReadDir(t, dir)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if got := ResetToken(m.Text); got != token {
		t.Errorf("ResetToken = %q, want %q", got, token)
	}
	if !strings.Contains(m.Text, "\n"+r.Link(token)+"\n") {
		t.Errorf("text does not contain the link %q on its own line:\n%s", r.Link(token), m.Text)
	}
	if !strings.Contains(m.Text, "valid for 30 minutes") || !strings.HasPrefix(m.Text, "Hello Jane Doe,\n") {
		t.Errorf("unexpected text:\n%s", m.Text)
	}
	if m.Subject() != "Reset your password" {
		t.Errorf("Subject = %q", m.Subject())
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "jane@example.org" || to[0].Name != "Jane Doe" {
		t.Errorf("To = %v (err %v)", to, err)
	}
}

func TestDirReadDirOrderAndSkipsForeignFiles(t *testing.T) {
	d, dir := mustNewDir(t)
	for i := range 5 {
		m := testMessage()
		m.Subject = fmt.Sprint("message ", i)
		if err := d.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	// A write in progress and unrelated files must be ignored.
	for _, name := range []string{tempPrefix + "123", "README.txt", ".hidden.eml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.eml"), 0o700); err != nil {
		t.Fatal(err)
	}
	msgs := mustReadDir(t, dir)
	if len(msgs) != 5 {
		t.Fatalf("got %d messages, want 5", len(msgs))
	}
	for i, m := range msgs {
		if want := fmt.Sprint("message ", i); m.Subject() != want {
			t.Errorf("message %d has Subject %q, want %q (oldest first)", i, m.Subject(), want)
		}
	}
}

func TestDirConcurrentSendsProduceDistinctFiles(t *testing.T) {
	d, dir := mustNewDir(t)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := testMessage()
			m.Subject = fmt.Sprint("msg-", i)
			errs <- d.Send(context.Background(), m)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := mustReadDir(t, dir)
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	paths, subjects := map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		paths[m.Path] = true
		subjects[m.Subject()] = true
	}
	if len(paths) != n || len(subjects) != n {
		t.Errorf("%d distinct paths and %d distinct subjects, want %d each", len(paths), len(subjects), n)
	}
}

// TestDirFilesAppearAtomically reads the directory continuously while large
// messages are being written: every message a reader can see must be
// complete.
func TestDirFilesAppearAtomically(t *testing.T) {
	d, dir := mustNewDir(t)
	body := strings.Repeat("0123456789 äöü abcdefghijklmnopqrstuvwxyz\n", 8000) // ~370 KB encoded
	const writers, perWriter = 4, 5

	var done atomic.Bool
	var seen atomic.Int64
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for !done.Load() {
			msgs, err := ReadDir(dir)
			if err != nil {
				readerErr <- err
				return
			}
			for _, m := range msgs {
				if m.Text != body {
					readerErr <- fmt.Errorf("%s: saw incomplete message (%d of %d bytes)", m.Path, len(m.Text), len(body))
					return
				}
			}
			seen.Store(int64(len(msgs)))
		}
	}()

	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range perWriter {
				m := testMessage()
				m.Text = body
				if err := d.Send(context.Background(), m); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	if got := len(mustReadDir(t, dir)); got != writers*perWriter {
		t.Errorf("got %d messages, want %d", got, writers*perWriter)
	}
	t.Logf("reader last saw %d complete messages while writing", seen.Load())
}

func TestDirSendErrors(t *testing.T) {
	d, dir := mustNewDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.Send(ctx, testMessage()); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with cancelled context = %v, want context.Canceled", err)
	}
	bad := testMessage()
	bad.To = "jane@example.org\r\nBcc: victim@example.net"
	if err := d.Send(t.Context(), bad); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Send of injected header = %v, want ErrInvalidMessage", err)
	}
	if msgs := mustReadDir(t, dir); len(msgs) != 0 {
		t.Errorf("failed sends left %d messages", len(msgs))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed sends left files: %v", entries)
	}
}

func TestNewDirAndReadDirErrors(t *testing.T) {
	if _, err := NewDir(""); err == nil {
		t.Error("NewDir(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDir(filepath.Join(file, "sub")); err == nil {
		t.Error("NewDir below a regular file succeeded")
	}
	if _, err := ReadDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir of a missing dir = %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "20260101T000000.000000000Z-X.eml"), []byte("no header separator\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir); err == nil {
		t.Error("ReadDir of a malformed .eml succeeded")
	}
}
