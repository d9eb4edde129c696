package pages

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/usersvc/usersvc/internal/user"
)

// adminHome lists users: GET /admin?q=…&page=…, the same search as
// GET /user?q= (Users.List with the query).
func (p *Pages) adminHome(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/admin")
	if s == nil {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = min(max(page, 1), user.MaxPage)
	d := pageData{Title: "Users", Area: "/admin", SignedIn: true, Query: q, Page: page, Message: notice(r)}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	list, err := p.users.List(ctx, user.ListInput{Page: page, PageSize: p.cfg.PageSize, Query: q})
	if err != nil {
		p.renderFailure(w, r, "admin", "list", err, d)
		return
	}
	d.Users, d.Total = list.Users, list.Total
	if page > 1 {
		d.Prev = page - 1
	}
	if int64(page*p.cfg.PageSize) < list.Total && page < user.MaxPage {
		d.Next = page + 1
	}
	p.render(w, r, "admin", d)
}

// notice is the confirmation a redirect after an action asks for; only
// known keys are shown, so the URL cannot put text on the page.
func notice(r *http.Request) string {
	return map[string]string{
		"saved":           "Changes saved.",
		"pending":         "Changes saved. The new email address gets a link to confirm it; until it is used, the current address stays the one to sign in with.",
		"deleted":         "The user was deleted.",
		"sessions":        "Their sessions were ended.",
		"factor-removed":  "The second factor was removed.",
		"factors-removed": "Their second factors were removed; they were told by mail.",
		"need-factor": "Administrators need a second factor here. Set one up below, then sign out and sign in to the " +
			"admin console again with it.",
	}[r.URL.Query().Get("done")]
}

// adminUser shows one user with the forms to change them.
func (p *Pages) adminUser(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/admin")
	if s == nil {
		return
	}
	d := pageData{Title: "User", Area: "/admin", SignedIn: true, Message: notice(r)}
	if p.loadUser(w, r, s, r.PathValue("id"), "admin-user", &d) {
		d.Title = "User " + d.User.Email
		p.render(w, r, "admin-user", d)
	}
}

// adminUpdate changes name, role and status: POST /admin/users/{id}.
func (p *Pages) adminUpdate(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/admin")
	if s == nil {
		return
	}
	id := r.PathValue("id")
	name := r.PostFormValue("name")
	role, status := user.Role(r.PostFormValue("role")), user.Status(r.PostFormValue("status"))
	d := pageData{Title: "User", Area: "/admin", SignedIn: true, Form: map[string]string{"name": name}}
	in := user.UpdateInput{Name: &name}
	d.Fields = map[string]string{}
	if role.Valid() {
		in.Role = &role
	} else {
		d.Fields["role"] = "must be user or admin"
	}
	if status.Valid() {
		in.Status = &status
	} else {
		d.Fields["status"] = "must be active or disabled"
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	var err error
	if len(d.Fields) > 0 {
		err = user.Invalid(d.Fields)
	} else if _, err = p.users.Update(ctx, id, in); err == nil {
		seeOther(w, r, "/admin/users/"+id+"?done=saved")
		return
	}
	p.userFailure(ctx, w, r, "update", err, d)
}

// userFailure shows the user of the path with why an action on them
// failed.
func (p *Pages) userFailure(ctx context.Context, w http.ResponseWriter, r *http.Request, op string, err error, d pageData) {
	d.User, _ = p.users.Get(ctx, r.PathValue("id"))
	p.renderFailure(w, r, "admin-user", op, err, d)
}

// adminAct runs one action on the user of the path as the signed-in admin
// and, when it fails, shows that user with the reason. It returns the
// session and the user's ID when the action succeeded.
func (p *Pages) adminAct(w http.ResponseWriter, r *http.Request, op string,
	act func(ctx context.Context, id string) error) (*session, string, bool) {
	s := p.requireSession(w, r, "/admin")
	if s == nil {
		return nil, "", false
	}
	id := r.PathValue("id")
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	if err := act(ctx, id); err != nil {
		p.userFailure(ctx, w, r, op, err, pageData{Title: "User", Area: "/admin", SignedIn: true})
		return nil, "", false
	}
	return s, id, true
}

// adminDelete removes a user: POST /admin/users/{id}/delete.
func (p *Pages) adminDelete(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := p.adminAct(w, r, "delete", p.users.Delete); ok {
		seeOther(w, r, "/admin?done=deleted")
	}
}

// adminEndSessions signs the user out everywhere:
// POST /admin/users/{id}/end-sessions.
func (p *Pages) adminEndSessions(w http.ResponseWriter, r *http.Request) {
	s, id, ok := p.adminAct(w, r, "end sessions", p.users.EndSessions)
	switch {
	case !ok:
	case id == s.claims.Subject:
		// The admin ended their own sessions, this one included.
		p.clearSession(w)
		seeOther(w, r, "/admin")
	default:
		seeOther(w, r, "/admin/users/"+id+"?done=sessions")
	}
}
