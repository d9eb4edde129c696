package mail

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

func TestMessageBytesHeaders(t *testing.T) {
	m := testMessage()
	raw, err := m.Bytes(testNow)
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	for i, b := range raw {
		if b == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at offset %d in %q", i, raw)
		}
		if b == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at offset %d in %q", i, raw)
		}
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Errorf("message does not end with CRLF")
	}

	wantOrder := []string{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var gotOrder []string
	for _, line := range strings.Split(string(head), "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		gotOrder = append(gotOrder, name)
	}
	if strings.Join(gotOrder, ",") != strings.Join(wantOrder, ",") {
		t.Errorf("headers = %v, want %v", gotOrder, wantOrder)
	}

	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot parse the message: %v", err)
	}
	h := msg.Header
	if d, err := h.Date(); err != nil || !d.Equal(testNow) {
		t.Errorf("Date = %v (err %v), want %v", d, err, testNow)
	}
	for name, want := range map[string]string{
		"From":                      `"User Service" <noreply@example.com>`,
		"To":                        `"Jane Doe" <jane@example.org>`,
		"Subject":                   "Hello",
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	idRE := regexp.MustCompile(`^<[A-Z2-7]{16,}@example\.com>$`)
	id := h.Get("Message-ID")
	if !idRE.MatchString(id) {
		t.Errorf("Message-ID = %q, want random@example.com", id)
	}
	raw2, err := m.Bytes(testNow)
	if err != nil {
		t.Fatal(err)
	}
	msg2, _ := netmail.ReadMessage(bytes.NewReader(raw2))
	if msg2.Header.Get("Message-ID") == id {
		t.Errorf("two renderings share Message-ID %q", id)
	}
}

func TestMessageBytesBody(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"one line", "one line\n"},
		{"unix\nlines\n", "unix\nlines\n"},
		{"dos\r\nlines\r\n", "dos\nlines\n"},
		{"äöü = 100%\n", "äöü = 100%\n"},
		{strings.Repeat("x", 300), strings.Repeat("x", 300) + "\n"},
	}
	for _, tt := range tests {
		m := testMessage()
		m.Text = tt.in
		raw, err := m.Bytes(testNow)
		if err != nil {
			t.Fatalf("Bytes(%q): %v", tt.in, err)
		}
		_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		for _, line := range strings.Split(string(body), "\r\n") {
			if len(line) > 76 {
				t.Errorf("quoted-printable line longer than 76: %q", line)
			}
		}
		dec, err := readAllString(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(dec, "\r\n", "\n"); got != tt.want {
			t.Errorf("body of %q decodes to %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMessageBytesSubjectEncodingAndFolding(t *testing.T) {
	for _, subject := range []string{
		"Grüße – 🔑",
		strings.Repeat("long ascii subject ", 20),
		strings.Repeat("überlanger Betreff ", 20),
	} {
		m := testMessage()
		m.Subject = strings.TrimSpace(subject)
		raw, err := m.Bytes(testNow)
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		for _, line := range strings.Split(string(head), "\r\n") {
			if len(line) > 78 {
				t.Errorf("header line longer than 78: %q", line)
			}
			for _, r := range line {
				if r >= 0x80 {
					t.Fatalf("non-ASCII in header line %q", line)
				}
			}
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || got != m.Subject {
			t.Errorf("Subject round trip = %q (err %v), want %q", got, err, m.Subject)
		}
	}
}

func TestMessageBytesRejectsHeaderInjection(t *testing.T) {
	const inject = "Bcc: victim@example.net"
	tests := []struct {
		field string
		set   func(*Message, string)
	}{
		{"From", func(m *Message, v string) { m.From = v }},
		{"To", func(m *Message, v string) { m.To = v }},
		{"Subject", func(m *Message, v string) { m.Subject = v }},
	}
	for _, tt := range tests {
		for _, sep := range []string{"\r\n", "\n", "\r", "\r\n "} {
			m := testMessage()
			base := map[string]string{"From": "noreply@example.com", "To": "jane@example.org", "Subject": "hi"}[tt.field]
			tt.set(&m, base+sep+inject)
			raw, err := m.Bytes(testNow)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("%s with %q: Bytes error = %v (message %q), want ErrInvalidMessage", tt.field, sep, err, raw)
				continue
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "CR or LF") {
				t.Errorf("%s: error %q does not explain the problem", tt.field, err)
			}
			if strings.Contains(err.Error(), "victim") {
				t.Errorf("%s: error echoes the injected value: %q", tt.field, err)
			}
		}
	}
}

func TestMessageBytesRejectsInvalid(t *testing.T) {
	tests := map[string]Message{
		"empty From":         {To: "a@example.org"},
		"empty To":           {From: "a@example.org"},
		"From without @":     {From: "noreply", To: "a@example.org"},
		"two recipients":     {From: "a@example.com", To: "a@example.org, b@example.org"},
		"NUL in Subject":     {From: "a@example.com", To: "b@example.org", Subject: "a\x00b"},
		"invalid UTF-8 Text": {From: "a@example.com", To: "b@example.org", Text: "\xff"},
		"invalid UTF-8 Subj": {From: "a@example.com", To: "b@example.org", Subject: "\xc3"},
		"unbreakable header": {From: "a@example.com", To: "b@example.org", Subject: strings.Repeat("x", 1200)},
	}
	for name, m := range tests {
		if _, err := m.Bytes(testNow); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: error = %v, want ErrInvalidMessage", name, err)
		}
	}
}

func readAllString(r io.Reader) (string, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}
