package cache

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

// entryV2 is an entry as version 2 was written before the entry embedded
// user.Snapshot. Entries like it sit in Redis during a rolling deploy, so
// the current code must read it as the same user.
const entryV2 = `{"v":2,"id":"u1","email":"a@x.io","name":"Ada","role":"admin","status":"active",` +
	`"password_hash":"h","email_verified":true,"pending_email":"b@x.io","session_version":3,` +
	`"created_at":"2025-06-01T12:00:00Z","updated_at":"2025-06-02T12:00:00Z"}`

func TestEntryFormatUnchanged(t *testing.T) {
	u, ok := decode([]byte(entryV2), "u1")
	if !ok {
		t.Fatal("a version 2 entry no longer decodes")
	}
	want := &user.User{ID: "u1", Email: "a@x.io", Name: "Ada", Role: user.RoleAdmin, Status: user.StatusActive,
		PasswordHash: "h", EmailVerified: true, PendingEmail: "b@x.io", SessionVersion: 3,
		CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("decode = %+v, want %+v", u, want)
	}
	b, err := encode(u)
	if err != nil {
		t.Fatal(err)
	}
	var got, old map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(entryV2), &old)
	if !reflect.DeepEqual(got, old) {
		t.Errorf("encode = %s, want the fields of %s", b, entryV2)
	}
}
