package search

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// A cursor is base64url(JSON{q, a}): a is the sort key of the last hit
// returned (adapter-specific: relevance score and ID), q a fingerprint of
// the query it belongs to. Both engines page with "search after" a sort
// key rather than an offset, so deep pages cost no more than the first and
// a page never repeats or skips a hit while the index is unchanged. (Writes
// between pages can change scores and so move hits across the cursor; the
// list is a snapshot per page, not per session.)
//
// The fingerprint makes a cursor from another query an ErrInvalidQuery
// instead of a silently wrong page. It is not a signature: a forged cursor
// only lets its maker start a page wherever they like, which Text already
// allows.
type cursor struct {
	Q string          `json:"q"`
	A json.RawMessage `json:"a"`
}

// fingerprint identifies the matching part of a normalised query: the terms
// (so case and punctuation do not matter) and the filters, not the limit.
func fingerprint(q Query) string {
	h := sha256.Sum256([]byte(strings.Join(Terms(q.Text), " ") + "\x00" + string(q.Role) + "\x00" + string(q.Status)))
	return hex.EncodeToString(h[:6])
}

// EncodeCursor makes the Result.Next for the normalised query q whose last
// hit has the sort key after (any JSON-encodable value).
func EncodeCursor(q Query, after any) (string, error) {
	a, err := json.Marshal(after)
	if err != nil {
		return "", fmt.Errorf("search: encode cursor: %w", err)
	}
	b, err := json.Marshal(cursor{Q: fingerprint(q), A: a})
	if err != nil {
		return "", fmt.Errorf("search: encode cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeCursor reads q.After into after (a pointer). A cursor that is
// malformed or was made for another query is an error wrapping
// ErrInvalidQuery; adapters must still check the decoded key's shape.
func DecodeCursor(q Query, after any) error {
	b, err := base64.RawURLEncoding.DecodeString(q.After)
	if err != nil {
		return fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || len(c.A) == 0 {
		return fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	if c.Q != fingerprint(q) {
		return fmt.Errorf("%w: cursor belongs to a different query", ErrInvalidQuery)
	}
	if err := json.Unmarshal(c.A, after); err != nil {
		return fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	return nil
}
