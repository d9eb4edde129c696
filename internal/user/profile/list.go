package profile

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/user"
	"strings"
	"unicode/utf8"
)

// List returns a page of users (admins only), ordered by ID, which is
// creation order. With a cursor the store seeks straight to the page
// (keyset) and skips the count, so deep pages cost the same as the first.
func (s *Profiles) List(ctx context.Context, actor user.Actor, in user.ListInput) (*user.Page, error) {
	if err := actor.Authorize(user.OpList, "", ""); err != nil {
		return nil, err
	}
	fields := map[string]string{}
	size := in.PageSize
	switch {
	case size == 0:
		size = s.cfg.DefaultPageSize
	case size < 0 || size > s.cfg.MaxPageSize:
		fields["page_size"] = fmt.Sprintf("must be between 1 and %d", s.cfg.MaxPageSize)
	}
	page := in.Page
	switch {
	case page == 0:
		page = 1
	case page < 0 || page > user.MaxPage:
		fields["page"] = fmt.Sprintf("must be between 1 and %d; use the cursor for deeper pages", user.MaxPage)
	}
	q := strings.TrimSpace(in.Query)
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > user.MaxQueryLength {
		fields["q"] = fmt.Sprintf("must be valid UTF-8 of at most %d characters", user.MaxQueryLength)
	}
	if in.Role != "" && !in.Role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if in.Status != "" && !in.Status.Valid() {
		fields["status"] = "must be active or disabled"
	}
	var after, searchAfter string
	if in.Cursor != "" {
		kind, v, ok := decodeCursor(in.Cursor)
		if !ok {
			fields["cursor"] = "is not a cursor this service issued"
		}
		if kind == searchCursorPrefix {
			searchAfter = v
		} else {
			after = v
		}
	}
	useSearch := s.search != nil && q != ""
	if useSearch && page > 1 && in.Cursor == "" {
		fields["page"] = "search results are paged with the cursor only"
	}
	if len(fields) > 0 {
		return nil, user.Invalid(fields)
	}
	if useSearch {
		p, err := s.searchList(ctx, q, in, size, searchAfter)
		if err == nil {
			return p, nil
		}
		// The index is a derived view; the database can still answer.
		s.log.WarnContext(ctx, "search unavailable, listing from the database", "error", err)
		if searchAfter != "" {
			return nil, user.Invalid(map[string]string{"cursor": "the search this cursor belongs to is unavailable; start again"})
		}
	}
	lq := user.ListQuery{Prefix: strings.ToLower(q), Role: in.Role, Status: in.Status, AfterID: after, Limit: size + 1,
		SkipTotal: after != ""}
	if after == "" {
		lq.Offset = (page - 1) * size
	}
	users, total, err := s.store.ListUsers(ctx, lq)
	if err != nil {
		return nil, user.StoreErr("list users", err)
	}
	out := &user.Page{Users: users, Total: total, Page: page, PageSize: size}
	if after != "" {
		out.Page = 0 // a cursor page has no number
	}
	if len(users) > size {
		out.Users = users[:size]
		out.NextCursor = encodeCursor(idCursorPrefix, users[size-1].ID)
	}
	return out, nil
}

// searchList answers a text query from the search index and reads the
// users from the store; IDs the index still knows but the store no longer
// does (a deletion not yet indexed) are left out.
func (s *Profiles) searchList(ctx context.Context, q string, in user.ListInput, size int, after string) (*user.Page, error) {
	res, err := s.search.SearchUsers(ctx, user.SearchQuery{Text: q, Role: in.Role, Status: in.Status, Limit: size, After: after})
	if err != nil {
		return nil, err
	}
	out := &user.Page{Users: make([]*user.User, 0, len(res.IDs)), Total: res.Total, Page: 1, PageSize: size}
	if after != "" {
		out.Page = 0
	}
	for _, id := range res.IDs {
		u, err := s.store.UserByID(ctx, id)
		if errors.Is(err, user.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, user.StoreErr("get user", err)
		}
		out.Users = append(out.Users, u)
	}
	if res.Next != "" {
		out.NextCursor = encodeCursor(searchCursorPrefix, res.Next)
	}
	return out, nil
}

// Cursor kinds: a keyset position in ID order, or a search index's own
// cursor.
const (
	idCursorPrefix     = "u1:"
	searchCursorPrefix = "s1:"
)

// encodeCursor makes an opaque cursor. It is opaque so the encoding can
// change; it holds nothing secret.
func encodeCursor(kind, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + v))
}

func decodeCursor(c string) (kind, v string, ok bool) {
	if len(c) > 512 {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	if id, ok := strings.CutPrefix(string(b), idCursorPrefix); ok && user.CheckID(id) == "" {
		return idCursorPrefix, id, true
	}
	if v, ok := strings.CutPrefix(string(b), searchCursorPrefix); ok && v != "" && utf8.ValidString(v) {
		return searchCursorPrefix, v, true
	}
	return "", "", false
}
