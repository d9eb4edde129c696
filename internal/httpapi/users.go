package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/user"
)

// The handlers below only translate: parse and bound the request, call one
// RPC (the service authenticates the caller), render the answer. Permissions and
// validation of values are the service's; the handlers check only what the
// protobuf contract cannot carry (unknown enum names, non-integers).

// signupAccepted is the one answer of an enumeration-safe sign-up, the same
// for every address (the SignupAccepted schema).
var signupAccepted = gin.H{"message": "Check your mailbox: a mail to this address tells you how to go on."}

// createUser registers a user: POST /user → 201 with Location, or 202 with
// signupAccepted when the service answers an enumeration-safe sign-up.
func (s *server) createUser(c *gin.Context) {
	in, ok := bindJSON[createUserRequest](c)
	if !ok {
		return
	}
	// The contract's role enum cannot carry an unknown name to the service.
	if in.Role != "" && !user.Role(in.Role).Valid() {
		invalid(c, "invalid request", map[string]string{"role": "must be user or admin"})
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	created, err := s.users.Create(ctx, in.input())
	if err != nil {
		s.fail(c, "create", err)
		return
	}
	if created == nil {
		c.JSON(http.StatusAccepted, signupAccepted)
		return
	}
	u := userToJSON(created)
	c.Header("Location", "/user/"+u.ID)
	c.JSON(http.StatusCreated, u)
}

// getUser returns one user: GET /user/:id.
func (s *server) getUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	u, err := s.users.Get(ctx, id)
	if err != nil {
		s.fail(c, "get", err)
		return
	}
	c.JSON(http.StatusOK, userToJSON(u))
}

// userListJSON is the UserList schema. Every field is always present, so
// clients need no presence checks: NextCursor is "" on the last page; a page
// fetched by cursor has Page 0 (it has no number) and Total -1 (the service
// does not count on keyset pages, which would cost a scan of every match).
type userListJSON struct {
	Users      []userJSON `json:"users"`
	Total      int64      `json:"total"`
	Page       int32      `json:"page"`
	PageSize   int32      `json:"page_size"`
	NextCursor string     `json:"next_cursor"`
}

// maxPageSize is the widest page_size the HTTP contract admits; the service
// enforces its own (configurable) bound too.
const maxPageSize = 100

// listUsers lists users (admins): GET /user?page&page_size&cursor&q&role&status.
func (s *server) listUsers(c *gin.Context) {
	details := map[string]string{}
	in := user.ListInput{
		Page:     int(queryInt(c, "page", 1, user.MaxPage, details)),
		PageSize: int(queryInt(c, "page_size", 1, maxPageSize, details)),
		Cursor:   textParam(c.Query("cursor"), "cursor", "is not a cursor this service issued", details),
		Query:    textParam(c.Query("q"), "q", "must be valid UTF-8", details),
		Role:     user.Role(c.Query("role")),
		Status:   user.Status(c.Query("status")),
	}
	if in.Role != "" && !in.Role.Valid() {
		details["role"] = "must be user or admin"
	}
	if in.Status != "" && !in.Status.Valid() {
		details["status"] = "must be active or disabled"
	}
	if len(details) > 0 {
		invalid(c, "invalid query parameters", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	p, err := s.users.List(ctx, in)
	if err != nil {
		s.fail(c, "list", err)
		return
	}
	out := userListJSON{Users: make([]userJSON, 0, len(p.Users)), Total: p.Total,
		Page: int32(p.Page), PageSize: int32(p.PageSize), NextCursor: p.NextCursor}
	for _, u := range p.Users {
		out.Users = append(out.Users, userToJSON(u))
	}
	c.JSON(http.StatusOK, out)
}

// updateUser changes a user: PUT /user/:id. The service decides who may
// change which field (a user changing their own role gets 403 from it).
func (s *server) updateUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	in, ok := bindJSON[updateUserRequest](c)
	if !ok {
		return
	}
	upd := in.input()
	details := map[string]string{}
	if upd.Role != nil && !upd.Role.Valid() {
		details["role"] = "must be user or admin"
	}
	if upd.Status != nil && !upd.Status.Valid() {
		details["status"] = "must be active or disabled"
	}
	if len(details) > 0 {
		invalid(c, "invalid request", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	u, err := s.users.Update(ctx, id, upd)
	if err != nil {
		s.fail(c, "update", err)
		return
	}
	c.JSON(http.StatusOK, userToJSON(u))
}

// deleteUser removes a user: DELETE /user/:id → 204.
func (s *server) deleteUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.Delete(ctx, id); err != nil {
		s.fail(c, "delete", err)
		return
	}
	c.Status(http.StatusNoContent)
}
