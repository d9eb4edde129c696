package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// This file is the reading side of Dir. It lives in a non-test file so that
// tests of other packages (HTTP handlers, the auth service) can assert on
// the mail they caused to be sent without an SMTP server.

// Stored is one message read back from a Dir directory.
type Stored struct {
	Path   string         // file the message was read from
	Header netmail.Header // raw headers; use Subject for the decoded subject
	Text   string         // decoded body, with "\n" line ends
}

// Subject returns the RFC 2047-decoded Subject header (the raw header if it
// cannot be decoded).
func (s Stored) Subject() string {
	raw := s.Header.Get("Subject")
	dec, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		return raw
	}
	return dec
}

// ReadDir returns the messages written into dir by Dir, oldest first (Dir's
// file names sort chronologically). Temporary files of writes in progress
// are skipped, so ReadDir may run while messages are being sent.
//
// Bodies are decoded according to Content-Transfer-Encoding and CRLF is
// turned into "\n", so Text compares equal to what the sender passed in
// Message.Text (plus the final newline Message.Bytes guarantees).
func ReadDir(dir string) ([]Stored, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("mail: read dir: %w", err)
	}
	var out []Stored
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, emlSuffix) {
			continue
		}
		s, err := readStored(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("mail: read dir: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func readStored(path string) (Stored, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Stored{}, err
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Stored{}, fmt.Errorf("parse %s: %w", path, err)
	}
	text, err := decodeBody(msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return Stored{}, fmt.Errorf("decode body of %s: %w", path, err)
	}
	return Stored{Path: path, Header: msg.Header, Text: text}, nil
}

// decodeBody undoes the transfer encoding and normalises line ends.
func decodeBody(cte string, body io.Reader) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips CR/LF itself
	case "", "7bit", "8bit", "binary":
	default:
		return "", fmt.Errorf("unsupported Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

// ResetToken extracts the token from a password-reset mail's decoded text:
// the value of the "token" query parameter of the first link that has one.
// It returns "" if there is none.
//
// The link is parsed as a URL rather than matched with a pattern so that
// tokens containing characters that Link had to escape come back exactly.
func ResetToken(text string) string {
	for _, field := range strings.Fields(text) {
		if !strings.Contains(field, "token=") {
			continue
		}
		field = strings.Trim(field, `<>"'()`)
		u, err := url.Parse(field)
		if err != nil {
			continue
		}
		if tok := u.Query().Get("token"); tok != "" {
			return tok
		}
	}
	return ""
}
