package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/user"
)

// The handlers below only translate: parse and bound the request, call one
// RPC with the caller as actor, render the answer. Permissions and
// validation of values are the service's; the handlers check only what the
// protobuf contract cannot carry (unknown enum names, non-integers).

type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	// Role is optional ("" = user); only an admin may create an admin.
	Role string `json:"role"`
}

// createUser registers a user: POST /user → 201 with Location.
func (s *server) createUser(c *gin.Context) {
	in, ok := bindJSON[createUserRequest](c)
	if !ok {
		return
	}
	req := &userv1.CreateRequest{Email: in.Email, Password: in.Password, Name: in.Name, Actor: actorOf(c)}
	if in.Role != "" {
		r, ok := parseRole(in.Role)
		if !ok {
			invalid(c, "invalid request", map[string]string{"role": "must be user or admin"})
			return
		}
		req.Role = r
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	resp, err := s.users.Create(ctx, req)
	if err != nil {
		s.fail(c, "create", err)
		return
	}
	u := userFromProto(resp.GetUser())
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
	resp, err := s.users.Get(ctx, &userv1.GetRequest{Id: id, Actor: actorOf(c)})
	if err != nil {
		s.fail(c, "get", err)
		return
	}
	c.JSON(http.StatusOK, userFromProto(resp.GetUser()))
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
	req := &userv1.PaginationRequest{
		Page:     queryInt(c, "page", 1, user.MaxPage, details),
		PageSize: queryInt(c, "page_size", 1, maxPageSize, details),
		Cursor:   textParam(c.Query("cursor"), "cursor", "is not a cursor this service issued", details),
		Query:    textParam(c.Query("q"), "q", "must be valid UTF-8", details),
		Actor:    actorOf(c),
	}
	if v := c.Query("role"); v != "" {
		if r, ok := parseRole(v); ok {
			req.Role = r
		} else {
			details["role"] = "must be user or admin"
		}
	}
	if v := c.Query("status"); v != "" {
		if st, ok := parseStatus(v); ok {
			req.Status = st
		} else {
			details["status"] = "must be active or disabled"
		}
	}
	if len(details) > 0 {
		invalid(c, "invalid query parameters", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	resp, err := s.users.Pagination(ctx, req)
	if err != nil {
		s.fail(c, "list", err)
		return
	}
	out := userListJSON{Users: make([]userJSON, 0, len(resp.GetUsers())), Total: resp.GetTotal(),
		Page: resp.GetPage(), PageSize: resp.GetPageSize(), NextCursor: resp.GetNextCursor()}
	for _, u := range resp.GetUsers() {
		out.Users = append(out.Users, userFromProto(u))
	}
	c.JSON(http.StatusOK, out)
}

// updateUserRequest holds optional fields; absent (or null) leaves a field
// unchanged.
type updateUserRequest struct {
	Name            *string `json:"name"`
	Email           *string `json:"email"`
	Password        *string `json:"password"`
	CurrentPassword *string `json:"current_password"`
	Role            *string `json:"role"`
	Status          *string `json:"status"`
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
	req := &userv1.UpdateRequest{Id: id, Name: in.Name, Email: in.Email, Password: in.Password,
		CurrentPassword: in.CurrentPassword, Actor: actorOf(c)}
	details := map[string]string{}
	if in.Role != nil {
		if r, ok := parseRole(*in.Role); ok {
			req.Role = &r
		} else {
			details["role"] = "must be user or admin"
		}
	}
	if in.Status != nil {
		if st, ok := parseStatus(*in.Status); ok {
			req.Status = &st
		} else {
			details["status"] = "must be active or disabled"
		}
	}
	if len(details) > 0 {
		invalid(c, "invalid request", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	resp, err := s.users.Update(ctx, req)
	if err != nil {
		s.fail(c, "update", err)
		return
	}
	c.JSON(http.StatusOK, userFromProto(resp.GetUser()))
}

// deleteUser removes a user: DELETE /user/:id → 204.
func (s *server) deleteUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if _, err := s.users.Delete(ctx, &userv1.DeleteRequest{Id: id, Actor: actorOf(c)}); err != nil {
		s.fail(c, "delete", err)
		return
	}
	c.Status(http.StatusNoContent)
}
