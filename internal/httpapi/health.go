package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/api"
)

// healthJSON is the Health schema.
type healthJSON struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz is liveness: the process answers HTTP. It deliberately checks no
// dependency, so an outage of the user service does not get every gateway
// restarted.
func (s *server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, healthJSON{Status: "ok"})
}

// readyz is readiness: Config.Ready decides whether traffic should be sent
// here (e.g. the user service is reachable). The check is bounded by
// RPCTimeout so a probe never hangs.
func (s *server) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RPCTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.WarnContext(c.Request.Context(), "not ready", "error", err)
			c.JSON(http.StatusServiceUnavailable, healthJSON{Status: "unavailable", Error: err.Error()})
			return
		}
	}
	c.JSON(http.StatusOK, healthJSON{Status: "ready"})
}

// openAPI serves the API's contract (application/yaml, RFC 9512).
func (s *server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", api.OpenAPI)
}
