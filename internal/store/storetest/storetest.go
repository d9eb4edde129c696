// Package storetest is the contract of user.Store as a test suite. Every
// storage adapter runs the same suite (sqlstore runs it on SQLite and on
// MariaDB), so the domain can rely on the behaviour written here rather than
// on one database's quirks.
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/user"
)

// Run runs the suite. open must return an empty store with the schema in
// place; it is called once per subtest (subtests run in parallel, each on
// its own store) and should register its own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) user.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s user.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"EmailLookupIsExact", testEmailLookupIsExact},
		{"DuplicateEmail", testDuplicateEmail},
		{"DuplicateID", testDuplicateID},
		{"NotFound", testNotFound},
		{"UpdateAllFields", testUpdateAllFields},
		{"UpdateUnchanged", testUpdateUnchanged},
		{"UpdateToTakenEmail", testUpdateToTakenEmail},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"DeleteCascades", testDeleteCascades},
		{"ListFilters", testListFilters},
		{"ListPrefix", testListPrefix},
		{"ListOffsetPages", testListOffsetPages},
		{"ListKeysetPages", testListKeysetPages},
		{"ListEdgeCases", testListEdgeCases},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshTokenRevocation", testRefreshTokenRevocation},
		{"UserSessions", testUserSessions},
		{"PasswordResets", testPasswordResets},
		{"DeleteUserPasswordResets", testDeleteUserPasswordResets},
		{"AtomicCommits", testAtomicCommits},
		{"AtomicRollsBackOnError", testAtomicRollsBackOnError},
		{"AtomicReturnsDomainErrorUnchanged", testAtomicReturnsDomainError},
		{"AtomicRollsBackOnPanic", testAtomicRollsBackOnPanic},
		{"ConcurrentCreateSameEmail", testConcurrentCreateSameEmail},
		{"ConcurrentMarkRefreshTokenUsed", testConcurrentMarkUsed},
		{"ConcurrentAtomicRefresh", testConcurrentAtomicRefresh},
		{"ConcurrentAtomicConsumeReset", testConcurrentAtomicConsumeReset},
		{"LockUserSerialisesReadModifyWrite", testLockUser},
		{"LockRefreshTokenSeesTheLatestUse", testLockRefreshToken},
		{"ReplacePasswordHashIsConditional", testReplacePasswordHash},
		{"ListSkipTotal", testListSkipTotal},
		{"LockActiveAdmins", testLockActiveAdmins},
		{"LockActiveAdminsSerialisesRemovals", testLockActiveAdminsSerialises},
		{"ServiceAccounts", testServiceAccounts},
		{"EmailVerifications", testEmailVerifications},
		{"ConcurrentAtomicConsumeVerification", testConcurrentConsumeVerification},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// concurrency is how many goroutines race in the concurrency tests.
const concurrency = 20

// passwordHash is a constant, well-formed argon2id string: the store never
// looks inside it.
const passwordHash = "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$" +
	"q7d7Hh8p3nC2wYbZqUvQm5sX9rJt4kLf1aEoGiNcWdM"

// baseTime has nanoseconds and a non-UTC zone, so every round trip checks
// truncation to microseconds and conversion to UTC.
var baseTime = time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+5:30", 5*3600+1800))

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid: %v", err)
	}
	return id.String()
}

// newHash returns a random 64-hex-digit string, the shape of a SHA-256 token
// hash.
func newHash() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUser builds a user as the domain does: UUIDv7 ID, normalised email,
// trimmed name. Successive calls produce increasing IDs.
func newUser(t *testing.T, email, name string) *user.User {
	t.Helper()
	return &user.User{
		ID:             newID(t),
		Email:          user.NormalizeEmail(email),
		Name:           user.NormalizeName(name),
		Role:           user.RoleUser,
		Status:         user.StatusActive,
		PasswordHash:   passwordHash,
		SessionVersion: 1,
		CreatedAt:      baseTime,
		UpdatedAt:      baseTime.Add(time.Second),
	}
}

func create(t *testing.T, s user.Repo, u *user.User) *user.User {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Email, err)
	}
	return u
}

// seedUser creates a user with a unique email.
func seedUser(t *testing.T, s user.Repo) *user.User {
	t.Helper()
	return create(t, s, newUser(t, "u-"+newHash()[:12]+"@example.com", "Seed User"))
}

func newToken(u *user.User, family string) user.RefreshToken {
	return user.RefreshToken{
		Hash:      newHash(),
		FamilyID:  family,
		UserID:    u.ID,
		CreatedAt: baseTime,
		ExpiresAt: baseTime.Add(30 * 24 * time.Hour),
		AMR:       "pwd otp mfa",
	}
}

func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := norm(*t)
	return &n
}

// checkTime compares a read-back time with what was written: equal after
// truncation to microseconds, and in UTC.
func checkTime(t *testing.T, what string, got, wrote time.Time) {
	t.Helper()
	if !got.Equal(norm(wrote)) {
		t.Errorf("%s = %v, want %v", what, got, norm(wrote))
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func checkTimePtr(t *testing.T, what string, got, wrote *time.Time) {
	t.Helper()
	switch {
	case got == nil && wrote == nil:
	case got == nil || wrote == nil:
		t.Errorf("%s = %v, want %v", what, got, normPtr(wrote))
	default:
		checkTime(t, what, *got, *wrote)
	}
}

// checkUser compares every field of a read-back user with the written one.
func checkUser(t *testing.T, got, want *user.User) {
	t.Helper()
	if got == nil {
		t.Fatalf("user is nil, want %s", want.ID)
	}
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name || got.Role != want.Role ||
		got.Status != want.Status || got.PasswordHash != want.PasswordHash || got.SessionVersion != want.SessionVersion ||
		got.EmailVerified != want.EmailVerified || got.PendingEmail != want.PendingEmail {
		t.Errorf("user = %+v\nwant %+v", *got, *want)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func checkToken(t *testing.T, got *user.RefreshToken, want user.RefreshToken) {
	t.Helper()
	if got.Hash != want.Hash || got.FamilyID != want.FamilyID || got.UserID != want.UserID || got.AMR != want.AMR {
		t.Errorf("token = %+v\nwant %+v", *got, want)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTimePtr(t, "UsedAt", got.UsedAt, want.UsedAt)
	checkTimePtr(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func getToken(t *testing.T, s user.Repo, hash string) *user.RefreshToken {
	t.Helper()
	rt, err := s.RefreshTokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("RefreshTokenByHash: %v", err)
	}
	return rt
}

func testCreateAndGet(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := newUser(t, "Alice@Example.com", "  Alice Liddell ")
	u.Role = user.RoleAdmin
	u.SessionVersion = 7
	want := *u
	create(t, s, u)

	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, got, &want)
	got, err = s.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	checkUser(t, got, &want)
}

// testEmailLookupIsExact: the domain normalises emails before every lookup,
// so the store compares them exactly, as stored.
func testEmailLookupIsExact(t *testing.T, s user.Store) {
	u := create(t, s, newUser(t, "bob@example.com", "Bob"))
	_, err := s.UserByEmail(t.Context(), "BOB@example.com")
	wantErr(t, "UserByEmail(upper case)", err, user.ErrNotFound)
	_, err = s.UserByEmail(t.Context(), "bob@example.co")
	wantErr(t, "UserByEmail(prefix)", err, user.ErrNotFound)
	if got, err := s.UserByEmail(t.Context(), u.Email); err != nil || got.ID != u.ID {
		t.Errorf("UserByEmail(exact) = %v, %v", got, err)
	}
}

func testDuplicateEmail(t *testing.T, s user.Store) {
	ctx := t.Context()
	first := create(t, s, newUser(t, "carol@example.com", "Carol"))
	dup := newUser(t, "carol@example.com", "Other Carol")
	wantErr(t, "CreateUser(duplicate email)", s.CreateUser(ctx, dup), user.ErrEmailTaken)

	_, err := s.UserByID(ctx, dup.ID)
	wantErr(t, "UserByID(rejected duplicate)", err, user.ErrNotFound)
	got, err := s.UserByEmail(ctx, "carol@example.com")
	if err != nil || got.ID != first.ID || got.Name != "Carol" {
		t.Errorf("UserByEmail after duplicate = %+v, %v; want the first user", got, err)
	}
}

// testDuplicateID: a clash on the primary key is not a taken email.
func testDuplicateID(t *testing.T, s user.Store) {
	u := create(t, s, newUser(t, "dave@example.com", "Dave"))
	again := newUser(t, "dave2@example.com", "Dave")
	again.ID = u.ID
	err := s.CreateUser(t.Context(), again)
	if err == nil {
		t.Fatal("CreateUser with a taken ID succeeded")
	}
	if errors.Is(err, user.ErrEmailTaken) {
		t.Errorf("CreateUser with a taken ID = %v, want an error other than ErrEmailTaken", err)
	}
}

func testNotFound(t *testing.T, s user.Store) {
	ctx := t.Context()
	seedUser(t, s)
	missing := newUser(t, "nobody@example.com", "Nobody")

	_, err := s.UserByID(ctx, missing.ID)
	wantErr(t, "UserByID", err, user.ErrNotFound)
	_, err = s.UserByEmail(ctx, missing.Email)
	wantErr(t, "UserByEmail", err, user.ErrNotFound)
	wantErr(t, "UpdateUser", s.UpdateUser(ctx, missing), user.ErrNotFound)
	wantErr(t, "DeleteUser", s.DeleteUser(ctx, missing.ID), user.ErrNotFound)
	_, err = s.RefreshTokenByHash(ctx, newHash())
	wantErr(t, "RefreshTokenByHash", err, user.ErrNotFound)
	_, err = s.PasswordResetByHash(ctx, newHash())
	wantErr(t, "PasswordResetByHash", err, user.ErrNotFound)

	if ok, err := s.MarkRefreshTokenUsed(ctx, newHash(), baseTime); ok || err != nil {
		t.Errorf("MarkRefreshTokenUsed(unknown) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.DeletePasswordReset(ctx, newHash()); ok || err != nil {
		t.Errorf("DeletePasswordReset(unknown) = %v, %v; want false, nil", ok, err)
	}
	if err := s.RevokeRefreshFamily(ctx, newID(t), baseTime); err != nil {
		t.Errorf("RevokeRefreshFamily(unknown) = %v", err)
	}
	if err := s.RevokeUserRefreshTokens(ctx, missing.ID, baseTime); err != nil {
		t.Errorf("RevokeUserRefreshTokens(unknown) = %v", err)
	}
	// Rows that would point at a missing user are refused as not found.
	err = s.CreateRefreshToken(ctx, newToken(missing, newID(t)))
	wantErr(t, "CreateRefreshToken(unknown user)", err, user.ErrNotFound)
	err = s.PutPasswordReset(ctx, user.PasswordReset{Hash: newHash(), UserID: missing.ID,
		CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)})
	wantErr(t, "PutPasswordReset(unknown user)", err, user.ErrNotFound)
}

func testUpdateAllFields(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := create(t, s, newUser(t, "erin@example.com", "Erin"))
	created := u.CreatedAt

	next := *u
	next.Email = "erin.new@example.com"
	next.Name = "Erin Ümlaut-Ñame 🚀"
	next.Role = user.RoleAdmin
	next.Status = user.StatusDisabled
	next.PasswordHash = strings.Replace(passwordHash, "t=3", "t=4", 1)
	next.SessionVersion = 42
	next.EmailVerified = true
	next.PendingEmail = "erin.pending@example.com"
	next.UpdatedAt = baseTime.Add(48*time.Hour + 987654321)
	next.CreatedAt = baseTime.Add(-time.Hour) // not mutable: must be ignored
	want := next
	want.CreatedAt = created
	if err := s.UpdateUser(ctx, &next); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}

	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, got, &want)
	got, err = s.UserByEmail(ctx, "erin.new@example.com")
	if err != nil || got.ID != u.ID {
		t.Errorf("UserByEmail(new email) = %v, %v", got, err)
	}
	_, err = s.UserByEmail(ctx, "erin@example.com")
	wantErr(t, "UserByEmail(old email)", err, user.ErrNotFound)
	// The old email is free again.
	create(t, s, newUser(t, "erin@example.com", "Another Erin"))
}

// testUpdateUnchanged: writing a user back unchanged matches a row, so it is
// not "not found" (MySQL counts changed rows unless told otherwise).
func testUpdateUnchanged(t *testing.T, s user.Store) {
	u := create(t, s, newUser(t, "frank@example.com", "Frank"))
	same := *u
	if err := s.UpdateUser(t.Context(), &same); err != nil {
		t.Fatalf("UpdateUser(unchanged) = %v, want nil", err)
	}
	if err := s.UpdateUser(t.Context(), &same); err != nil {
		t.Fatalf("UpdateUser(unchanged, again) = %v, want nil", err)
	}
}

func testUpdateToTakenEmail(t *testing.T, s user.Store) {
	ctx := t.Context()
	create(t, s, newUser(t, "grace@example.com", "Grace"))
	h := create(t, s, newUser(t, "heidi@example.com", "Heidi"))
	want := *h

	next := *h
	next.Email = "grace@example.com"
	next.Name = "Heidi Renamed"
	wantErr(t, "UpdateUser(taken email)", s.UpdateUser(ctx, &next), user.ErrEmailTaken)

	got, err := s.UserByID(ctx, h.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, got, &want) // unchanged
}

func testTimeRoundTrip(t *testing.T, s user.Store) {
	ctx := t.Context()
	cases := []time.Time{
		baseTime,
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2099, 1, 2, 3, 4, 5, 1000, time.FixedZone("UTC-8", -8*3600)),
		time.Now(), // carries a monotonic clock reading
	}
	for i, ts := range cases {
		u := newUser(t, fmt.Sprintf("time%d@example.com", i), "Time")
		u.CreatedAt, u.UpdatedAt = ts, ts.Add(time.Nanosecond)
		wrote := *u
		create(t, s, u)
		got, err := s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkTime(t, fmt.Sprintf("case %d CreatedAt", i), got.CreatedAt, wrote.CreatedAt)
		checkTime(t, fmt.Sprintf("case %d UpdatedAt", i), got.UpdatedAt, wrote.UpdatedAt)

		rt := newToken(u, newID(t))
		rt.CreatedAt, rt.ExpiresAt = ts, ts.Add(time.Hour+time.Nanosecond)
		used, revoked := ts.Add(time.Minute+999), ts.Add(2*time.Minute+1)
		rt.UsedAt, rt.RevokedAt = &used, &revoked
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatalf("CreateRefreshToken: %v", err)
		}
		checkToken(t, getToken(t, s, rt.Hash), rt)

		pr := user.PasswordReset{Hash: newHash(), UserID: u.ID, CreatedAt: ts, ExpiresAt: ts.Add(time.Hour + 1)}
		if err := s.PutPasswordReset(ctx, pr); err != nil {
			t.Fatalf("PutPasswordReset: %v", err)
		}
		gotPR, err := s.PasswordResetByHash(ctx, pr.Hash)
		if err != nil {
			t.Fatalf("PasswordResetByHash: %v", err)
		}
		checkTime(t, "reset CreatedAt", gotPR.CreatedAt, pr.CreatedAt)
		checkTime(t, "reset ExpiresAt", gotPR.ExpiresAt, pr.ExpiresAt)
	}
}

func testDeleteCascades(t *testing.T, s user.Store) {
	ctx := t.Context()
	a := create(t, s, newUser(t, "ivan@example.com", "Ivan"))
	b := seedUser(t, s)
	aTokens := []user.RefreshToken{newToken(a, newID(t)), newToken(a, newID(t))}
	bToken := newToken(b, newID(t))
	for _, rt := range append(aTokens, bToken) {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatalf("CreateRefreshToken: %v", err)
		}
	}
	aReset := user.PasswordReset{Hash: newHash(), UserID: a.ID, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	bReset := user.PasswordReset{Hash: newHash(), UserID: b.ID, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	for _, pr := range []user.PasswordReset{aReset, bReset} {
		if err := s.PutPasswordReset(ctx, pr); err != nil {
			t.Fatalf("PutPasswordReset: %v", err)
		}
	}

	if err := s.DeleteUser(ctx, a.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.UserByID(ctx, a.ID)
	wantErr(t, "UserByID(deleted)", err, user.ErrNotFound)
	for _, rt := range aTokens {
		_, err := s.RefreshTokenByHash(ctx, rt.Hash)
		wantErr(t, "RefreshTokenByHash(deleted user's)", err, user.ErrNotFound)
	}
	_, err = s.PasswordResetByHash(ctx, aReset.Hash)
	wantErr(t, "PasswordResetByHash(deleted user's)", err, user.ErrNotFound)
	wantErr(t, "DeleteUser(again)", s.DeleteUser(ctx, a.ID), user.ErrNotFound)

	// Other users keep theirs.
	if _, err := s.UserByID(ctx, b.ID); err != nil {
		t.Errorf("other user: %v", err)
	}
	if _, err := s.RefreshTokenByHash(ctx, bToken.Hash); err != nil {
		t.Errorf("other user's token: %v", err)
	}
	if _, err := s.PasswordResetByHash(ctx, bReset.Hash); err != nil {
		t.Errorf("other user's reset: %v", err)
	}
	// The email can be registered again.
	create(t, s, newUser(t, "ivan@example.com", "Ivan Again"))
}

func ids(us []*user.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// list calls ListUsers and checks the page is in ID order.
func list(t *testing.T, s user.Repo, q user.ListQuery) ([]string, int64) {
	t.Helper()
	us, total, err := s.ListUsers(t.Context(), q)
	if err != nil {
		t.Fatalf("ListUsers(%+v): %v", q, err)
	}
	got := ids(us)
	if !slices.IsSorted(got) {
		t.Errorf("ListUsers(%+v) not in ID order: %v", q, got)
	}
	if len(us) > q.Limit && q.Limit > 0 {
		t.Errorf("ListUsers(%+v) returned %d users, over the limit", q, len(us))
	}
	return got, total
}

// expect returns the sorted IDs of the users that match.
func expect(us []*user.User, match func(*user.User) bool) []string {
	var out []string
	for _, u := range us {
		if match(u) {
			out = append(out, u.ID)
		}
	}
	slices.Sort(out)
	return out
}

func checkList(t *testing.T, s user.Repo, q user.ListQuery, want []string) {
	t.Helper()
	got, total := list(t, s, q)
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers(%+v) = %v\nwant %v", q, got, want)
	}
	if total != int64(len(want)) {
		t.Errorf("ListUsers(%+v) total = %d, want %d", q, total, len(want))
	}
}

func testListFilters(t *testing.T, s user.Store) {
	var all []*user.User
	for i, rs := range []struct {
		r  user.Role
		st user.Status
	}{
		{user.RoleAdmin, user.StatusActive}, {user.RoleAdmin, user.StatusDisabled},
		{user.RoleUser, user.StatusActive}, {user.RoleUser, user.StatusActive},
		{user.RoleUser, user.StatusDisabled}, {user.RoleUser, user.StatusDisabled},
		{user.RoleUser, user.StatusDisabled},
	} {
		u := newUser(t, fmt.Sprintf("filter%d@example.com", i), "Filter")
		u.Role, u.Status = rs.r, rs.st
		all = append(all, create(t, s, u))
	}
	for _, q := range []user.ListQuery{
		{},
		{Role: user.RoleAdmin},
		{Role: user.RoleUser},
		{Status: user.StatusActive},
		{Status: user.StatusDisabled},
		{Role: user.RoleUser, Status: user.StatusDisabled},
		{Role: user.RoleAdmin, Status: user.StatusActive},
	} {
		want := expect(all, func(u *user.User) bool {
			return (q.Role == "" || u.Role == q.Role) && (q.Status == "" || u.Status == q.Status)
		})
		q.Limit = 100
		checkList(t, s, q, want)
	}
}

func testListPrefix(t *testing.T, s user.Store) {
	var all []*user.User
	for _, e := range []struct{ email, name string }{
		{"a%b@example.com", "Percent Sign"},
		{"axb@example.com", "Plain X"},
		{"a_c@example.com", "Under Score"},
		{"abc@example.com", "Zoë Ärger"},
		{"a!d@example.com", "Bang"},
		{"zed@example.com", "A%Name"},
		{"yan@example.com", "ÉLODIE Dupont"},
		{"xavier@example.com", "ZOE Plain"},
		{"wu@example.com", "_under"},
	} {
		all = append(all, create(t, s, newUser(t, e.email, e.name)))
	}
	for _, p := range []string{
		"a%", "a_", "a!", "a", "ax", "a%b", "%", "_", "!", "!d", "zo", "zoë", "zoë ä",
		strings.ToLower("ÉLO"), "élodie d", "ärger", "percent sign", "nomatch", "@example.com",
	} {
		want := expect(all, func(u *user.User) bool {
			return strings.HasPrefix(u.Email, p) || strings.HasPrefix(strings.ToLower(u.Name), p)
		})
		checkList(t, s, user.ListQuery{Prefix: p, Limit: 100}, want)
	}
	// The wildcards are literal: spot-check that the reference above is not
	// trivially empty.
	if got, _ := list(t, s, user.ListQuery{Prefix: "a%", Limit: 100}); len(got) != 2 {
		t.Errorf(`prefix "a%%" matched %d users, want 2 (a%%b@… and the name A%%Name)`, len(got))
	}
	if got, _ := list(t, s, user.ListQuery{Prefix: "a_", Limit: 100}); len(got) != 1 {
		t.Errorf(`prefix "a_" matched %d users, want 1`, len(got))
	}
	// Prefix and filters combine; the total ignores the limit.
	admin := all[3]
	admin.Role = user.RoleAdmin
	if err := s.UpdateUser(t.Context(), admin); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	checkList(t, s, user.ListQuery{Prefix: "zo", Role: user.RoleAdmin, Limit: 10}, []string{admin.ID})
	got, total := list(t, s, user.ListQuery{Prefix: "a", Limit: 2})
	if len(got) != 2 || total != 6 {
		t.Errorf(`prefix "a" limit 2 = %d users, total %d; want 2, 6`, len(got), total)
	}
}

// seedMany creates n users (IDs increase) and returns them in ID order.
func seedMany(t *testing.T, s user.Repo, n int, role func(i int) user.Role) []*user.User {
	t.Helper()
	us := make([]*user.User, n)
	for i := range us {
		u := newUser(t, fmt.Sprintf("page%03d@example.com", i), fmt.Sprintf("Page %03d", i))
		if role != nil {
			u.Role = role(i)
		}
		us[i] = create(t, s, u)
	}
	return us
}

func testListOffsetPages(t *testing.T, s user.Store) {
	all := ids(seedMany(t, s, 25, nil))
	var seen []string
	for _, tc := range []struct{ offset, n int }{{0, 10}, {10, 10}, {20, 5}, {30, 0}} {
		got, total := list(t, s, user.ListQuery{Offset: tc.offset, Limit: 10})
		if len(got) != tc.n || total != 25 {
			t.Errorf("offset %d: %d users, total %d; want %d, 25", tc.offset, len(got), total, tc.n)
		}
		seen = append(seen, got...)
	}
	if !slices.Equal(seen, all) {
		t.Errorf("offset pages = %v\nwant %v", seen, all)
	}
}

func testListKeysetPages(t *testing.T, s user.Store) {
	us := seedMany(t, s, 25, func(i int) user.Role {
		if i%3 == 0 {
			return user.RoleAdmin
		}
		return user.RoleUser
	})
	for _, role := range []user.Role{"", user.RoleAdmin, user.RoleUser} {
		want := expect(us, func(u *user.User) bool { return role == "" || u.Role == role })
		var seen []string
		after := ""
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatalf("role %q: keyset paging does not end", role)
			}
			q := user.ListQuery{Role: role, AfterID: after, Limit: 4}
			if after != "" {
				q.Offset = 5 // must be ignored when AfterID is set
			}
			got, total := list(t, s, q)
			if total != int64(len(want)) {
				t.Errorf("role %q page %d: total %d, want %d", role, page, total, len(want))
			}
			seen = append(seen, got...)
			if len(got) < 4 {
				break
			}
			after = got[len(got)-1]
		}
		if !slices.Equal(seen, want) {
			t.Errorf("role %q: keyset pages = %v\nwant %v", role, seen, want)
		}
	}
}

func testListEdgeCases(t *testing.T, s user.Store) {
	checkList(t, s, user.ListQuery{Limit: 10}, nil) // empty store
	all := ids(seedMany(t, s, 5, nil))
	// After the last ID: an empty page, the full total.
	got, total := list(t, s, user.ListQuery{AfterID: all[4], Limit: 10})
	if len(got) != 0 || total != 5 {
		t.Errorf("after last: %d users, total %d; want 0, 5", len(got), total)
	}
	// AfterID need not exist: the page starts after where it would sort.
	between := all[1] + "~"
	got, _ = list(t, s, user.ListQuery{AfterID: between, Limit: 10})
	if !slices.Equal(got, all[2:]) {
		t.Errorf("after %q = %v, want %v", between, got, all[2:])
	}
	// A page exactly filling the limit still reports the right total.
	got, total = list(t, s, user.ListQuery{Limit: 5})
	if len(got) != 5 || total != 5 {
		t.Errorf("limit 5 of 5: %d users, total %d", len(got), total)
	}
	got, total = list(t, s, user.ListQuery{Offset: 3, Limit: 5})
	if len(got) != 2 || total != 5 {
		t.Errorf("offset 3 limit 5 of 5: %d users, total %d", len(got), total)
	}
}

func testRefreshTokens(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := seedUser(t, s)
	rt := newToken(u, newID(t))
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	checkToken(t, getToken(t, s, rt.Hash), rt)

	dup := newToken(u, newID(t))
	dup.Hash = rt.Hash
	if err := s.CreateRefreshToken(ctx, dup); err == nil {
		t.Error("CreateRefreshToken with a taken hash succeeded")
	}

	usedAt := baseTime.Add(time.Hour + 123456789)
	ok, err := s.MarkRefreshTokenUsed(ctx, rt.Hash, usedAt)
	if err != nil || !ok {
		t.Fatalf("MarkRefreshTokenUsed = %v, %v; want true", ok, err)
	}
	ok, err = s.MarkRefreshTokenUsed(ctx, rt.Hash, usedAt.Add(time.Minute))
	if err != nil || ok {
		t.Fatalf("MarkRefreshTokenUsed(again) = %v, %v; want false", ok, err)
	}
	want := rt
	want.UsedAt = &usedAt // the first use's time
	checkToken(t, getToken(t, s, rt.Hash), want)
}

func testRefreshTokenRevocation(t *testing.T, s user.Store) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	fam1, fam2 := newID(t), newID(t)
	t1, t2, t3 := newToken(u, fam1), newToken(u, fam1), newToken(u, fam2)
	t4 := newToken(other, newID(t))
	for _, rt := range []user.RefreshToken{t1, t2, t3, t4} {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatalf("CreateRefreshToken: %v", err)
		}
	}

	at1 := baseTime.Add(time.Hour)
	if err := s.RevokeRefreshFamily(ctx, fam1, at1); err != nil {
		t.Fatalf("RevokeRefreshFamily: %v", err)
	}
	for _, rt := range []user.RefreshToken{t1, t2} {
		got := getToken(t, s, rt.Hash)
		checkTimePtr(t, "family token RevokedAt", got.RevokedAt, &at1)
	}
	if got := getToken(t, s, t3.Hash); got.RevokedAt != nil {
		t.Errorf("other family's token revoked at %v", got.RevokedAt)
	}
	// A revoked token cannot be used.
	if ok, err := s.MarkRefreshTokenUsed(ctx, t2.Hash, at1); ok || err != nil {
		t.Errorf("MarkRefreshTokenUsed(revoked) = %v, %v; want false, nil", ok, err)
	}
	// Revoking again keeps the first revocation time.
	at2 := at1.Add(time.Hour)
	if err := s.RevokeRefreshFamily(ctx, fam1, at2); err != nil {
		t.Fatalf("RevokeRefreshFamily(again): %v", err)
	}
	checkTimePtr(t, "re-revoked RevokedAt", getToken(t, s, t1.Hash).RevokedAt, &at1)

	at3 := at2.Add(time.Hour)
	if err := s.RevokeUserRefreshTokens(ctx, u.ID, at3); err != nil {
		t.Fatalf("RevokeUserRefreshTokens: %v", err)
	}
	checkTimePtr(t, "user token RevokedAt", getToken(t, s, t3.Hash).RevokedAt, &at3)
	checkTimePtr(t, "already revoked RevokedAt", getToken(t, s, t2.Hash).RevokedAt, &at1)
	if got := getToken(t, s, t4.Hash); got.RevokedAt != nil {
		t.Errorf("other user's token revoked at %v", got.RevokedAt)
	}
}

// testUserSessions: a session is a family with a usable token; a rotated
// family reports its first and newest token, and families whose tokens are
// all used, revoked or expired are gone.
func testUserSessions(t *testing.T, s user.Store) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	now := baseTime.Add(2 * time.Hour)
	rotated, live, revoked, expired := newID(t), newID(t), newID(t), newID(t)
	first, second := newToken(u, rotated), newToken(u, rotated)
	second.CreatedAt, second.ExpiresAt = baseTime.Add(time.Hour), baseTime.Add(time.Hour+30*24*time.Hour)
	usedAt := second.CreatedAt
	first.UsedAt = &usedAt
	liveTok := newToken(u, live)
	liveTok.CreatedAt = baseTime.Add(90 * time.Minute)
	revokedTok, expiredTok := newToken(u, revoked), newToken(u, expired)
	revokedTok.RevokedAt = &usedAt
	expiredTok.ExpiresAt = now
	for _, rt := range []user.RefreshToken{first, second, liveTok, revokedTok, expiredTok, newToken(other, newID(t))} {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatalf("CreateRefreshToken: %v", err)
		}
	}
	got, err := s.UserSessions(ctx, u.ID, now, 10)
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	if len(got) != 2 || got[0].ID != live || got[1].ID != rotated {
		t.Fatalf("UserSessions = %+v, want the families %s then %s", got, live, rotated)
	}
	checkTime(t, "StartedAt", got[1].StartedAt, first.CreatedAt)
	checkTime(t, "LastUsedAt", got[1].LastUsedAt, second.CreatedAt)
	checkTime(t, "ExpiresAt", got[1].ExpiresAt, second.ExpiresAt)
	if got, err := s.UserSessions(ctx, u.ID, now, 1); err != nil || len(got) != 1 || got[0].ID != live {
		t.Errorf("UserSessions(limit 1) = %+v, %v; want the newest only", got, err)
	}
	if err := s.RevokeUserRefreshTokens(ctx, u.ID, now); err != nil {
		t.Fatalf("RevokeUserRefreshTokens: %v", err)
	}
	if got, err := s.UserSessions(ctx, u.ID, now, 10); err != nil || len(got) != 0 {
		t.Errorf("UserSessions after revoking all = %+v, %v; want none", got, err)
	}
	if got, err := s.UserSessions(ctx, newID(t), now, 10); err != nil || len(got) != 0 {
		t.Errorf("UserSessions(unknown user) = %+v, %v; want none", got, err)
	}
}

func testPasswordResets(t *testing.T, s user.Store) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	reset := func(owner *user.User, created time.Time) user.PasswordReset {
		return user.PasswordReset{Hash: newHash(), UserID: owner.ID, Email: owner.Email, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	}
	r1, r2, r3 := reset(u, baseTime), reset(u, baseTime.Add(time.Minute)), reset(other, baseTime)
	for _, pr := range []user.PasswordReset{r1, r2, r3} {
		if err := s.PutPasswordReset(ctx, pr); err != nil {
			t.Fatalf("PutPasswordReset: %v", err)
		}
	}
	_, err := s.PasswordResetByHash(ctx, r1.Hash)
	wantErr(t, "PasswordResetByHash(replaced)", err, user.ErrNotFound)
	got, err := s.PasswordResetByHash(ctx, r2.Hash)
	if err != nil {
		t.Fatalf("PasswordResetByHash: %v", err)
	}
	if got.Hash != r2.Hash || got.UserID != u.ID || got.Email != u.Email {
		t.Errorf("reset = %+v, want %+v", *got, r2)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, r2.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, r2.ExpiresAt)

	if ok, err := s.DeletePasswordReset(ctx, r2.Hash); !ok || err != nil {
		t.Errorf("DeletePasswordReset = %v, %v; want true", ok, err)
	}
	if ok, err := s.DeletePasswordReset(ctx, r2.Hash); ok || err != nil {
		t.Errorf("DeletePasswordReset(again) = %v, %v; want false", ok, err)
	}
	if _, err := s.PasswordResetByHash(ctx, r3.Hash); err != nil {
		t.Errorf("other user's reset: %v", err)
	}
	// After consumption a new reset can be put.
	if err := s.PutPasswordReset(ctx, reset(u, baseTime.Add(time.Hour))); err != nil {
		t.Errorf("PutPasswordReset after delete: %v", err)
	}
}

// testDeleteUserPasswordResets: a change to the account ends its open
// reset, and only its own.
func testDeleteUserPasswordResets(t *testing.T, s user.Store) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	mine := user.PasswordReset{Hash: newHash(), UserID: u.ID, Email: u.Email, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	theirs := user.PasswordReset{Hash: newHash(), UserID: other.ID, Email: other.Email, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	for _, pr := range []user.PasswordReset{mine, theirs} {
		if err := s.PutPasswordReset(ctx, pr); err != nil {
			t.Fatalf("PutPasswordReset: %v", err)
		}
	}
	err := s.Atomic(ctx, func(r user.Repo) error { return r.DeleteUserPasswordResets(ctx, u.ID) })
	if err != nil {
		t.Fatalf("DeleteUserPasswordResets: %v", err)
	}
	_, err = s.PasswordResetByHash(ctx, mine.Hash)
	wantErr(t, "PasswordResetByHash(deleted)", err, user.ErrNotFound)
	if _, err := s.PasswordResetByHash(ctx, theirs.Hash); err != nil {
		t.Errorf("other user's reset: %v", err)
	}
	// Nothing open is not an error.
	if err := s.DeleteUserPasswordResets(ctx, u.ID); err != nil {
		t.Errorf("DeleteUserPasswordResets(none open): %v", err)
	}
}

func testAtomicCommits(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := newUser(t, "judy@example.com", "Judy")
	rt := newToken(u, newID(t))
	err := s.Atomic(ctx, func(r user.Repo) error {
		create(t, r, u)
		if _, err := r.UserByID(ctx, u.ID); err != nil { // sees its own write
			return err
		}
		if err := r.CreateRefreshToken(ctx, rt); err != nil {
			return err
		}
		u.Name = "Judy Updated"
		if err := r.UpdateUser(ctx, u); err != nil {
			return err
		}
		if ok, err := r.MarkRefreshTokenUsed(ctx, rt.Hash, baseTime); !ok || err != nil {
			return fmt.Errorf("mark used = %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Atomic: %v", err)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil || got.Name != "Judy Updated" {
		t.Errorf("after commit: %+v, %v", got, err)
	}
	if got := getToken(t, s, rt.Hash); got.UsedAt == nil {
		t.Error("after commit: token not marked used")
	}
}

func testAtomicRollsBackOnError(t *testing.T, s user.Store) {
	ctx := t.Context()
	existing := seedUser(t, s)
	u := newUser(t, "ken@example.com", "Ken")
	boom := errors.New("boom")
	err := s.Atomic(ctx, func(r user.Repo) error {
		create(t, r, u)
		if err := r.CreateRefreshToken(ctx, newToken(existing, newID(t))); err != nil {
			return err
		}
		existing.Name = "Changed In Rolled Back Tx"
		if err := r.UpdateUser(ctx, existing); err != nil {
			return err
		}
		return boom
	})
	if err != boom { // identity, not errors.Is: the error must come back unchanged
		t.Fatalf("Atomic = %v, want the callback's error unchanged", err)
	}
	_, err = s.UserByID(ctx, u.ID)
	wantErr(t, "UserByID(rolled back)", err, user.ErrNotFound)
	got, err := s.UserByID(ctx, existing.ID)
	if err != nil || got.Name == "Changed In Rolled Back Tx" {
		t.Errorf("update not rolled back: %+v, %v", got, err)
	}
	// The store is still usable (no lock or connection left behind).
	seedUser(t, s)
}

func testAtomicReturnsDomainError(t *testing.T, s user.Store) {
	ctx := t.Context()
	create(t, s, newUser(t, "leo@example.com", "Leo"))
	fresh := newUser(t, "mallory@example.com", "Mallory")
	err := s.Atomic(ctx, func(r user.Repo) error {
		create(t, r, fresh)
		return r.CreateUser(ctx, newUser(t, "leo@example.com", "Leo Twin"))
	})
	wantErr(t, "Atomic", err, user.ErrEmailTaken)
	if user.CodeOf(err) != user.CodeAlreadyExists {
		t.Errorf("CodeOf(Atomic error) = %v, want %v", user.CodeOf(err), user.CodeAlreadyExists)
	}
	_, err = s.UserByID(ctx, fresh.ID)
	wantErr(t, "UserByID(rolled back)", err, user.ErrNotFound)

	err = s.Atomic(ctx, func(r user.Repo) error {
		_, err := r.UserByID(ctx, newID(t))
		return err
	})
	wantErr(t, "Atomic(not found)", err, user.ErrNotFound)
}

func testAtomicRollsBackOnPanic(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := newUser(t, "niaj@example.com", "Niaj")
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.Atomic(ctx, func(r user.Repo) error {
			create(t, r, u)
			panic("kaboom")
		})
	}()
	_, err := s.UserByID(ctx, u.ID)
	wantErr(t, "UserByID(rolled back)", err, user.ErrNotFound)
	// The store is still usable and the email free.
	if err := s.Atomic(ctx, func(r user.Repo) error { return r.CreateUser(ctx, u) }); err != nil {
		t.Errorf("Atomic after panic: %v", err)
	}
}

// race runs fn in concurrency goroutines released together.
func race(fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range concurrency {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentCreateSameEmail(t *testing.T, s user.Store) {
	us := make([]*user.User, concurrency)
	for i := range us {
		us[i] = newUser(t, "olivia@example.com", fmt.Sprintf("Olivia %d", i))
	}
	var ok, taken atomic.Int32
	race(func(i int) {
		err := s.CreateUser(t.Context(), us[i])
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, user.ErrEmailTaken):
			taken.Add(1)
		default:
			t.Errorf("CreateUser: %v", err)
		}
	})
	if ok.Load() != 1 || taken.Load() != concurrency-1 {
		t.Errorf("%d created, %d ErrEmailTaken; want 1 and %d", ok.Load(), taken.Load(), concurrency-1)
	}
}

func testConcurrentMarkUsed(t *testing.T, s user.Store) {
	rt := newToken(seedUser(t, s), newID(t))
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	oneWins(t, "MarkRefreshTokenUsed", func() (bool, error) { return s.MarkRefreshTokenUsed(t.Context(), rt.Hash, baseTime) })
}

// testConcurrentAtomicRefresh races the domain's refresh pattern: read the
// token in a transaction, then mark it used.
func testConcurrentAtomicRefresh(t *testing.T, s user.Store) {
	ctx := t.Context()
	rt := newToken(seedUser(t, s), newID(t))
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	var wins atomic.Int32
	race(func(int) {
		err := s.Atomic(ctx, func(r user.Repo) error {
			got, err := r.RefreshTokenByHash(ctx, rt.Hash)
			if err != nil {
				return err
			}
			if got.UsedAt != nil {
				return nil // lost, seen at read
			}
			ok, err := r.MarkRefreshTokenUsed(ctx, rt.Hash, baseTime)
			if ok {
				wins.Add(1)
			}
			return err
		})
		if err != nil {
			t.Errorf("Atomic: %v", err)
		}
	})
	if wins.Load() != 1 {
		t.Errorf("%d transactions marked the token used, want exactly 1", wins.Load())
	}
}

// testConcurrentAtomicConsumeReset races the domain's reset consumption:
// read the record in a transaction, then delete it; the delete decides.
func testConcurrentAtomicConsumeReset(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := seedUser(t, s)
	pr := user.PasswordReset{Hash: newHash(), UserID: u.ID, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	if err := s.PutPasswordReset(ctx, pr); err != nil {
		t.Fatalf("PutPasswordReset: %v", err)
	}
	raceConsume(t, s, "reset", func(r user.Repo) (bool, error) {
		if _, err := r.PasswordResetByHash(ctx, pr.Hash); err != nil {
			return false, err
		}
		return r.DeletePasswordReset(ctx, pr.Hash)
	})
}

// raceConsume runs consume (a read, then the delete that consumes a token)
// in many concurrent transactions: exactly one may see true.
func raceConsume(t *testing.T, s user.Store, what string, consume func(r user.Repo) (bool, error)) {
	t.Helper()
	var wins atomic.Int32
	race(func(int) {
		err := s.Atomic(t.Context(), func(r user.Repo) error {
			ok, err := consume(r)
			if ok {
				wins.Add(1)
			}
			return err
		})
		if err != nil && !errors.Is(err, user.ErrNotFound) {
			t.Errorf("Atomic: %v", err)
		}
	})
	if wins.Load() != 1 {
		t.Errorf("%d transactions consumed the %s, want exactly 1", wins.Load(), what)
	}
}

// testLockUser increments session_version from many transactions that each
// read the row with LockUser and write it back: no increment may be lost.
func testLockUser(t *testing.T, s user.Store) {
	u := seedUser(t, s)
	race(func(int) {
		err := s.Atomic(t.Context(), func(r user.Repo) error {
			cur, err := r.LockUser(t.Context(), u.ID)
			if err != nil {
				return err
			}
			cur.SessionVersion++
			return r.UpdateUser(t.Context(), cur)
		})
		if err != nil {
			t.Errorf("Atomic: %v", err)
		}
	})
	got, err := s.UserByID(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	if got.SessionVersion != u.SessionVersion+concurrency {
		t.Errorf("session_version %d after %d locked increments from %d: updates were lost",
			got.SessionVersion, concurrency, u.SessionVersion)
	}
	_, err = s.LockUser(t.Context(), newID(t))
	wantErr(t, "LockUser of a missing user", err, user.ErrNotFound)
}

// testLockRefreshToken races the domain's refresh under the grace: a
// locked read decides, so a transaction that reads the token unused always
// marks it, and every other one waits and then sees it used, even after a
// plain read of its own took a snapshot in which it was unused.
func testLockRefreshToken(t *testing.T, s user.Store) {
	ctx := t.Context()
	rt := newToken(seedUser(t, s), newID(t))
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	var wins, sawUsed atomic.Int32
	race(func(int) {
		err := s.Atomic(ctx, func(r user.Repo) error {
			if _, err := r.RefreshTokenByHash(ctx, rt.Hash); err != nil {
				return err
			}
			got, err := r.LockRefreshToken(ctx, rt.Hash)
			if err != nil {
				return err
			}
			if got.UsedAt != nil {
				sawUsed.Add(1)
				return nil
			}
			ok, err := r.MarkRefreshTokenUsed(ctx, rt.Hash, baseTime)
			if ok {
				wins.Add(1)
			} else if err == nil {
				t.Error("the locked read saw the token unused, but marking it lost")
			}
			return err
		})
		if err != nil {
			t.Errorf("Atomic: %v", err)
		}
	})
	if wins.Load() != 1 || sawUsed.Load() != concurrency-1 {
		t.Errorf("%d marked the token used, %d saw it used; want 1 and %d", wins.Load(), sawUsed.Load(), concurrency-1)
	}
	got, err := s.LockRefreshToken(ctx, rt.Hash)
	if err != nil {
		t.Fatalf("LockRefreshToken: %v", err)
	}
	want, usedAt := rt, baseTime
	want.UsedAt = &usedAt
	checkToken(t, got, want)
	_, err = s.LockRefreshToken(ctx, newHash())
	wantErr(t, "LockRefreshToken of a missing token", err, user.ErrNotFound)
}

func testReplacePasswordHash(t *testing.T, s user.Store) {
	u := seedUser(t, s)
	ok, err := s.ReplacePasswordHash(t.Context(), u.ID, "not-the-current-hash", "new")
	if err != nil || ok {
		t.Fatalf("replace with a stale old hash: ok=%v err=%v, want false, nil", ok, err)
	}
	ok, err = s.ReplacePasswordHash(t.Context(), u.ID, u.PasswordHash, "$argon2id$replaced")
	if err != nil || !ok {
		t.Fatalf("replace with the current hash: ok=%v err=%v, want true, nil", ok, err)
	}
	got, err := s.UserByID(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	if got.PasswordHash != "$argon2id$replaced" {
		t.Errorf("hash %q after replace", got.PasswordHash)
	}
}

func testListSkipTotal(t *testing.T, s user.Store) {
	us := seedMany(t, s, 5, func(int) user.Role { return user.RoleUser })
	page, total, err := s.ListUsers(t.Context(), user.ListQuery{AfterID: us[0].ID, Limit: 2, SkipTotal: true})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if total != -1 || len(page) != 2 || page[0].ID != us[1].ID {
		t.Errorf("SkipTotal page: total %d, %d users; want -1 and 2 starting after the cursor", total, len(page))
	}
}

func seedAdmin(t *testing.T, s user.Repo, status user.Status) *user.User {
	t.Helper()
	u := newUser(t, "a-"+newHash()[:12]+"@example.com", "Admin")
	u.Role, u.Status = user.RoleAdmin, status
	return create(t, s, u)
}

// testLockActiveAdmins: exactly the active admins, in ID order.
func testLockActiveAdmins(t *testing.T, s user.Store) {
	ctx := t.Context()
	seedUser(t, s)
	a := seedAdmin(t, s, user.StatusActive)
	seedAdmin(t, s, user.StatusDisabled)
	b := seedAdmin(t, s, user.StatusActive)
	var got []string
	err := s.Atomic(ctx, func(r user.Repo) error {
		var err error
		got, err = r.LockActiveAdmins(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("LockActiveAdmins: %v", err)
	}
	if !slices.Equal(got, []string{a.ID, b.ID}) {
		t.Errorf("LockActiveAdmins = %v, want %v", got, []string{a.ID, b.ID})
	}
}

// testLockActiveAdminsSerialisesRemovals: transactions that each demote an
// admin only while another active one remains must leave one, however many
// run at once. Without the lock two of them could both see two admins.
func testLockActiveAdminsSerialises(t *testing.T, s user.Store) {
	ctx := t.Context()
	admins := []*user.User{seedAdmin(t, s, user.StatusActive), seedAdmin(t, s, user.StatusActive)}
	var demoted atomic.Int32
	race(func(i int) {
		err := s.Atomic(ctx, func(r user.Repo) error {
			ids, err := r.LockActiveAdmins(ctx)
			if err != nil || len(ids) < 2 {
				return err
			}
			u, err := r.LockUser(ctx, admins[i%2].ID)
			if err != nil || u.Role != user.RoleAdmin {
				return err
			}
			u.Role = user.RoleUser
			if err := r.UpdateUser(ctx, u); err != nil {
				return err
			}
			demoted.Add(1)
			return nil
		})
		if err != nil {
			t.Errorf("Atomic: %v", err)
		}
	})
	if demoted.Load() != 1 {
		t.Errorf("%d admins demoted, want exactly 1", demoted.Load())
	}
	var left []string
	_ = s.Atomic(ctx, func(r user.Repo) error {
		var err error
		left, err = r.LockActiveAdmins(ctx)
		return err
	})
	if len(left) != 1 {
		t.Errorf("%d active admins left, want 1", len(left))
	}
}

// testEmailVerifications: one open verification per user (a new one
// replaces it), found by hash, consumed by a delete that only one caller
// wins, refused for an unknown user, and gone with the user.
func testEmailVerifications(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := seedUser(t, s)
	verification := func(email string, created time.Time) user.EmailVerification {
		return user.EmailVerification{Hash: newHash(), UserID: u.ID, Email: email, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
	}
	first, second := verification(u.Email, baseTime), verification("new@example.com", baseTime.Add(time.Minute))
	for _, v := range []user.EmailVerification{first, second} {
		if err := s.PutEmailVerification(ctx, v); err != nil {
			t.Fatalf("PutEmailVerification: %v", err)
		}
	}
	_, err := s.EmailVerificationByHash(ctx, first.Hash)
	wantErr(t, "EmailVerificationByHash(replaced)", err, user.ErrNotFound)
	got, err := s.EmailVerificationByHash(ctx, second.Hash)
	if err != nil {
		t.Fatalf("EmailVerificationByHash: %v", err)
	}
	if got.UserID != u.ID || got.Email != second.Email {
		t.Errorf("verification = %+v, want %+v", *got, second)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, second.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, second.ExpiresAt)
	if ok, err := s.DeleteEmailVerification(ctx, second.Hash); !ok || err != nil {
		t.Errorf("DeleteEmailVerification = %v, %v; want true", ok, err)
	}
	if ok, err := s.DeleteEmailVerification(ctx, second.Hash); ok || err != nil {
		t.Errorf("DeleteEmailVerification(again) = %v, %v; want false", ok, err)
	}
	missing := newUser(t, "nobody@example.com", "Nobody")
	err = s.PutEmailVerification(ctx, user.EmailVerification{Hash: newHash(), UserID: missing.ID, Email: missing.Email,
		CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)})
	wantErr(t, "PutEmailVerification(unknown user)", err, user.ErrNotFound)

	last := verification(u.Email, baseTime)
	if err := s.PutEmailVerification(ctx, last); err != nil {
		t.Fatalf("PutEmailVerification: %v", err)
	}
	if err := s.Atomic(ctx, func(r user.Repo) error { return r.DeleteUser(ctx, u.ID) }); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.EmailVerificationByHash(ctx, last.Hash)
	wantErr(t, "EmailVerificationByHash(deleted user's)", err, user.ErrNotFound)
}

// testConcurrentConsumeVerification: of many transactions consuming one
// verification token, exactly one wins.
func testConcurrentConsumeVerification(t *testing.T, s user.Store) {
	ctx := t.Context()
	u := seedUser(t, s)
	v := user.EmailVerification{Hash: newHash(), UserID: u.ID, Email: u.Email, CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Hour)}
	if err := s.PutEmailVerification(ctx, v); err != nil {
		t.Fatalf("PutEmailVerification: %v", err)
	}
	raceConsume(t, s, "verification", func(r user.Repo) (bool, error) {
		if _, err := r.EmailVerificationByHash(ctx, v.Hash); err != nil {
			return false, err
		}
		return r.DeleteEmailVerification(ctx, v.Hash)
	})
}
