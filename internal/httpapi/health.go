package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/api"
	"github.com/usersvc/usersvc/internal/health"
)

// healthz is liveness: the process answers HTTP. It deliberately checks no
// dependency, so an outage of the user service does not get every gateway
// restarted.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, health.Live)
}

// readyz is readiness: Config.Ready decides whether traffic should be sent
// here (e.g. the user service is reachable). The check is bounded by
// RPCTimeout so a probe never hangs.
func (s *server) readyz(c *gin.Context) {
	var checks []health.Check
	if s.cfg.Ready != nil {
		checks = append(checks, health.Check{Name: "user.service", Fn: s.cfg.Ready})
	}
	for _, c := range s.cfg.Degraded {
		c.Optional = true
		checks = append(checks, c)
	}
	rep, ok := health.Ready(c.Request.Context(), s.cfg.RPCTimeout, checks)
	if !ok {
		s.log.WarnContext(c.Request.Context(), "not ready", "error.message", rep.Error)
		c.JSON(http.StatusServiceUnavailable, rep)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// openAPI serves the API's contract (application/yaml, RFC 9512).
func (s *server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", api.OpenAPI)
}
