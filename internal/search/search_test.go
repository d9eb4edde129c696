package search

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

func TestNormalize(t *testing.T) {
	q, err := Query{Text: "  Alice  "}.Normalize()
	if err != nil || q.Text != "Alice" || q.Limit != DefaultLimit {
		t.Errorf("Normalize = %+v, %v", q, err)
	}
	q, err = Query{Limit: MaxLimit, Role: user.RoleAdmin, Status: user.StatusActive}.Normalize()
	if err != nil || q.Limit != MaxLimit {
		t.Errorf("Normalize(max) = %+v, %v", q, err)
	}
	for name, q := range map[string]Query{
		"long":      {Text: strings.Repeat("a", MaxTextLength+1)},
		"utf8":      {Text: "\xff"},
		"control":   {Text: "a\tb"},
		"terms":     {Text: strings.Repeat("a ", MaxTerms+1)},
		"role":      {Role: "x"},
		"status":    {Status: "x"},
		"limit":     {Limit: MaxLimit + 1},
		"neg limit": {Limit: -1},
		"cursor":    {After: strings.Repeat("a", MaxCursorLength+1)},
	} {
		if _, err := q.Normalize(); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%s: Normalize = %v, want ErrInvalidQuery", name, err)
		}
	}
	// Length counts runes, not bytes.
	if _, err := (Query{Text: strings.Repeat("ö", MaxTextLength)}).Normalize(); err != nil {
		t.Errorf("100 runes: %v", err)
	}
}

func TestTerms(t *testing.T) {
	for in, want := range map[string][]string{
		"Alice Smith":                 {"alice", "smith"},
		"alice.smith+tag@Example.COM": {"alice", "smith", "tag", "example", "com"},
		"O'Brien-Smyth":               {"o", "brien", "smyth"},
		"Zoë Ångström":                {"zoë", "ångström"},
		"user_42":                     {"user", "42"},
		"@.-":                         nil,
		"":                            nil,
	} {
		if got := Terms(in); !slices.Equal(got, want) {
			t.Errorf("Terms(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFuzziness(t *testing.T) {
	for term, want := range map[string]int{"": 0, "abc": 0, "abcd": 1, "abcde": 1, "abcdef": 2, "äöüß": 1, strings.Repeat("x", 50): 2} {
		if got := Fuzziness(term); got != want {
			t.Errorf("Fuzziness(%q) = %d, want %d", term, got, want)
		}
	}
}

func TestDocValidate(t *testing.T) {
	if err := (Doc{Snapshot: user.Snapshot{ID: "u"}, Version: 1}).Validate(); err != nil {
		t.Errorf("valid doc: %v", err)
	}
	for name, d := range map[string]Doc{
		"no id":     {Version: 1},
		"version 0": {Snapshot: user.Snapshot{ID: "u"}},
		"negative":  {Snapshot: user.Snapshot{ID: "u"}, Version: -1},
		"long id":   {Snapshot: user.Snapshot{ID: strings.Repeat("u", MaxIDLength+1)}, Version: 1},
		"bad name":  {Snapshot: user.Snapshot{ID: "u", Name: "\xff"}, Version: 1},
		"bad id":    {Snapshot: user.Snapshot{ID: "\xff"}, Version: 1},
		"bad email": {Snapshot: user.Snapshot{ID: "u", Email: "\xfe"}, Version: 1},
	} {
		if err := d.Validate(); !errors.Is(err, ErrInvalidDoc) {
			t.Errorf("%s: Validate = %v, want ErrInvalidDoc", name, err)
		}
	}
	if err := CheckDelete("u", 0); !errors.Is(err, ErrInvalidDoc) {
		t.Errorf("CheckDelete(version 0) = %v", err)
	}
}

func TestDocFromEvent(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	u := &user.EventUser{ID: "u1", Email: "a@x.io", Name: "A", Role: user.RoleAdmin, Status: user.StatusDisabled, CreatedAt: at, UpdatedAt: at}
	for _, typ := range []user.EventType{user.EventCreated, user.EventUpdated} {
		d, ok := DocFromEvent(user.Event{ID: "e1", Type: typ, OccurredAt: at, UserID: "u1", User: u})
		want := Doc{Snapshot: user.Snapshot{ID: "u1", Email: "a@x.io", Name: "A", Role: user.RoleAdmin, Status: user.StatusDisabled,
			CreatedAt: at, UpdatedAt: at}, Version: at.UnixMicro()}
		if !ok || d != want {
			t.Errorf("%s: DocFromEvent = %+v, %v; want %+v", typ, d, ok, want)
		}
	}
	for _, e := range []user.Event{
		{Type: user.EventDeleted, UserID: "u1", OccurredAt: at},
		{Type: user.EventPasswordChanged, UserID: "u1", OccurredAt: at, User: u},
		{Type: user.EventPasswordResetRequested, UserID: "u1", OccurredAt: at},
		{Type: user.EventUpdated, UserID: "u1", OccurredAt: at}, // no user
	} {
		if _, ok := DocFromEvent(e); ok {
			t.Errorf("DocFromEvent(%s) = ok", e.Type)
		}
	}
	// Later events get larger versions, even within a second.
	e1 := user.Event{OccurredAt: at}
	e2 := user.Event{OccurredAt: at.Add(time.Microsecond)}
	if EventVersion(e2) <= EventVersion(e1) {
		t.Error("EventVersion does not order events a microsecond apart")
	}
}

func TestCursor(t *testing.T) {
	q, _ := Query{Text: "Alice", Role: user.RoleAdmin}.Normalize()
	c, err := EncodeCursor(q, []string{"1.5", "u1"})
	if err != nil {
		t.Fatal(err)
	}
	// Same terms and filters, other spelling and limit: accepted.
	same, _ := Query{Text: "ALICE!", Role: user.RoleAdmin, Limit: 3, After: c}.Normalize()
	var got []string
	if err := DecodeCursor(same, &got); err != nil || !slices.Equal(got, []string{"1.5", "u1"}) {
		t.Errorf("DecodeCursor = %q, %v", got, err)
	}
	for name, other := range map[string]Query{
		"text":   {Text: "bob", Role: user.RoleAdmin, After: c},
		"role":   {Text: "alice", After: c},
		"status": {Text: "alice", Role: user.RoleAdmin, Status: user.StatusActive, After: c},
		"junk":   {Text: "alice", Role: user.RoleAdmin, After: "!!"},
		"json":   {Text: "alice", Role: user.RoleAdmin, After: "bm90IGpzb24"},
	} {
		if err := DecodeCursor(other, &got); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%s: DecodeCursor = %v, want ErrInvalidQuery", name, err)
		}
	}
	// A key of the wrong shape for the adapter.
	var n []int
	if err := DecodeCursor(same, &n); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("DecodeCursor(wrong shape) = %v", err)
	}
}
