package user

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ListInput selects a page: by Page/PageSize, or after Cursor.
type ListInput struct {
	Page     int
	PageSize int
	Cursor   string
	Query    string
	Role     Role
	Status   Status
}

// Page is one page of users.
type Page struct {
	Users []*User
	// Total counts every user matching the filters; -1 on cursor pages,
	// where counting would cost a scan of every match on each deep page.
	Total      int64
	Page       int
	PageSize   int
	NextCursor string
}

// MaxPage bounds offset pagination: deep offsets cost a scan of every
// skipped row, which is what the cursor is for.
const MaxPage = 10000

// MaxQueryLength bounds the search prefix.
const MaxQueryLength = 100

// List returns a page of users (admins only), ordered by ID, which is
// creation order. With a cursor the store seeks straight to the page
// (keyset) and skips the count, so deep pages cost the same as the first.
func (s *Service) List(ctx context.Context, actor Actor, in ListInput) (*Page, error) {
	if err := actor.authorize(OpList, "", ""); err != nil {
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
	case page < 0 || page > MaxPage:
		fields["page"] = fmt.Sprintf("must be between 1 and %d; use the cursor for deeper pages", MaxPage)
	}
	q := strings.TrimSpace(in.Query)
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > MaxQueryLength {
		fields["q"] = fmt.Sprintf("must be valid UTF-8 of at most %d characters", MaxQueryLength)
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
		return nil, Invalid(fields)
	}
	if useSearch {
		p, err := s.searchList(ctx, q, in, size, searchAfter)
		if err == nil {
			return p, nil
		}
		// The index is a derived view; the database can still answer.
		s.log.WarnContext(ctx, "search unavailable, listing from the database", "error", err)
		if searchAfter != "" {
			return nil, Invalid(map[string]string{"cursor": "the search this cursor belongs to is unavailable; start again"})
		}
	}
	lq := ListQuery{Prefix: strings.ToLower(q), Role: in.Role, Status: in.Status, AfterID: after, Limit: size + 1,
		SkipTotal: after != ""}
	if after == "" {
		lq.Offset = (page - 1) * size
	}
	users, total, err := s.store.ListUsers(ctx, lq)
	if err != nil {
		return nil, storeErr("list users", err)
	}
	out := &Page{Users: users, Total: total, Page: page, PageSize: size}
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
func (s *Service) searchList(ctx context.Context, q string, in ListInput, size int, after string) (*Page, error) {
	res, err := s.search.SearchUsers(ctx, SearchQuery{Text: q, Role: in.Role, Status: in.Status, Limit: size, After: after})
	if err != nil {
		return nil, err
	}
	out := &Page{Users: make([]*User, 0, len(res.IDs)), Total: res.Total, Page: 1, PageSize: size}
	if after != "" {
		out.Page = 0
	}
	for _, id := range res.IDs {
		u, err := s.store.UserByID(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, storeErr("get user", err)
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
	if id, ok := strings.CutPrefix(string(b), idCursorPrefix); ok && checkID(id) == "" {
		return idCursorPrefix, id, true
	}
	if v, ok := strings.CutPrefix(string(b), searchCursorPrefix); ok && v != "" && utf8.ValidString(v) {
		return searchCursorPrefix, v, true
	}
	return "", "", false
}
