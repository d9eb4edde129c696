package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/user"
)

// sessionJSON is the Session schema: one live sign-in (a refresh-token
// family; its ID is the "sid" claim of the session's access tokens).
type sessionJSON struct {
	ID         string `json:"id"`
	StartedAt  string `json:"started_at"`
	LastUsedAt string `json:"last_used_at"`
	ExpiresAt  string `json:"expires_at"`
}

// sessionListJSON is the SessionList schema.
type sessionListJSON struct {
	Sessions []sessionJSON `json:"sessions"`
}

func sessionsToJSON(in []user.SessionInfo) sessionListJSON {
	out := sessionListJSON{Sessions: make([]sessionJSON, len(in))}
	for i, s := range in {
		out.Sessions[i] = sessionJSON{ID: s.ID, StartedAt: rfc3339(s.StartedAt),
			LastUsedAt: rfc3339(s.LastUsedAt), ExpiresAt: rfc3339(s.ExpiresAt)}
	}
	return out
}

// listSessions answers GET /user/:id/sessions: the user's live sessions,
// newest first (at most user.MaxSessionsListed).
func (s *server) listSessions(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	list, err := s.users.Sessions(ctx, id)
	if err != nil {
		s.fail(c, "list sessions", err)
		return
	}
	c.JSON(http.StatusOK, sessionsToJSON(list))
}

// endSessions answers DELETE /user/:id/sessions: signs the user out
// everywhere, the caller's own session included when it is theirs.
func (s *server) endSessions(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.EndSessions(ctx, id); err != nil {
		s.fail(c, "end sessions", err)
		return
	}
	c.Status(http.StatusNoContent)
}
