package pages

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// session is a signed-in person as the session cookie carries them: the
// tokens a sign-in handed out. The cookie is the whole session, so any API
// replica can serve the next request; the service verifies the access token
// before the pages read anything from it, so a forged or altered cookie
// gains nothing.
type session struct {
	Access  string `json:"a"`
	Refresh string `json:"r"`

	claims accessClaims // read from Access once the service verified it
}

// accessClaims are the access-token claims the pages read to decide what
// to show and when to refresh. readClaims only decodes them; they decide
// anything only for a token the service has just verified (Validate) or
// has just issued (sign-in, refresh), since a client can edit a cookie:
// an expiry edited by hand once kept an idle session alive.
type accessClaims struct {
	Subject  string `json:"sub"`
	Role     string `json:"role"`
	Session  string `json:"sid"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	// AMR is how the session's sign-in was authenticated ("pwd", "otp",
	// "mfa", …).
	AMR []string `json:"amr"`
}

const sessionCookie = "usersvc_session"

// refreshAfter is how old an access token may get before a page request
// rotates the tokens: often enough that an active person never reaches the
// token's expiry (the idle timeout), seldom enough not to rotate per click.
const refreshAfter = time.Minute

func readClaims(access string) (accessClaims, bool) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return accessClaims{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return accessClaims{}, false
	}
	var c accessClaims
	if json.Unmarshal(raw, &c) != nil || c.Subject == "" || c.Expires == 0 {
		return accessClaims{}, false
	}
	return c, true
}

// setSession writes the session cookie, valid IdleTimeout from now.
func (p *Pages) setSession(w http.ResponseWriter, s *user.Session) {
	raw, _ := json.Marshal(session{Access: s.AccessToken, Refresh: s.RefreshToken})
	http.SetCookie(w, p.cookie(sessionCookie, base64.RawURLEncoding.EncodeToString(raw),
		int(p.cfg.IdleTimeout.Seconds())))
}

func (p *Pages) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, p.cookie(sessionCookie, "", -1))
}

// currentSession returns the request's session, refreshing its tokens when
// the access token is getting old, or nil when there is none or it has
// ended: the service refused its access token (see verified) or its
// refresh (revoked, idle or too old, user disabled or deleted). Each request that returns a session slides the
// cookie's idle window.
func (p *Pages) currentSession(w http.ResponseWriter, r *http.Request) *session {
	c, err := r.Cookie(p.cookieName(sessionCookie))
	if err != nil || c.Value == "" {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	var s session
	if err != nil || json.Unmarshal(raw, &s) != nil || s.Refresh == "" {
		p.clearSession(w)
		return nil
	}
	var ok bool
	if s.claims, ok = readClaims(s.Access); !ok {
		p.clearSession(w)
		return nil
	}
	if !p.verified(w, r, &s) {
		return nil
	}
	if p.cfg.Now().Sub(time.Unix(s.claims.IssuedAt, 0)) < refreshAfter {
		p.setSession(w, &user.Session{AccessToken: s.Access, RefreshToken: s.Refresh})
		return &s
	}
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	fresh, err := p.users.Refresh(ctx, s.Refresh)
	if err != nil {
		p.clearSession(w)
		return nil
	}
	p.setSession(w, fresh)
	ns := &session{Access: fresh.AccessToken, Refresh: fresh.RefreshToken}
	if ns.claims, ok = readClaims(ns.Access); !ok {
		return nil
	}
	return ns
}

// verified asks the service whether the session's access token is still
// good. A token it refuses (expired: the person was idle for at least its
// lifetime; edited; logged out; the user disabled) ends the session here
// and at the service. When the service cannot answer, the request is
// served signed out but the session is kept for the next one.
func (p *Pages) verified(w http.ResponseWriter, r *http.Request, s *session) bool {
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	err := p.users.Validate(ctx, s.Access)
	if err == nil {
		return true
	}
	if user.AsError(err).Code == user.CodeUnauthenticated {
		p.endSession(r.Context(), s)
		p.clearSession(w)
	}
	return false
}

// endSession revokes the session's refresh token family and its access
// token, best effort: the cookie is cleared either way.
func (p *Pages) endSession(ctx context.Context, s *session) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RPCTimeout)
	defer cancel()
	if err := p.users.Revoke(reqmeta.With(ctx, reqmeta.Call{RequestID: telemetry.RequestID(ctx)}), s.Refresh, s.Access); err != nil {
		p.log.WarnContext(ctx, "page sign-out: revoke failed", "error", err)
	}
}

// rpcContext is the context of one user-service call on behalf of the
// request's person (bearer "" = anonymous).
func (p *Pages) rpcContext(r *http.Request, bearer string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.RPCTimeout)
	return reqmeta.With(ctx, reqmeta.Call{RequestID: telemetry.RequestID(r.Context()), Bearer: bearer}), cancel
}
