package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/user"
)

// Error codes this package writes itself: the domain's (user.Code) where
// one fits, and the HTTP-only ones below them. All are part of the public
// contract (the Error schema's code enum in api/openapi.yaml).
const (
	codeNotFound             = string(user.CodeNotFound)
	codeInvalidArgument      = string(user.CodeInvalidArgument)
	codeUnauthenticated      = string(user.CodeUnauthenticated)
	codeInternal             = string(user.CodeInternal)
	codeMethodNotAllowed     = "method_not_allowed"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeUnavailable          = string(user.CodeUnavailable)
	codeResourceExhausted    = string(user.CodeResourceExhausted)
)

// errorBody is the JSON of every error response:
// {"error":{"code":…,"message":…,"details":{field: problem}}}.
type errorBody struct {
	Error errorInfo `json:"error"`
}

type errorInfo struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

// writeError answers with the error JSON and stops the handler chain. Every
// 401 carries WWW-Authenticate, as RFC 9110 requires, naming the only scheme
// the API accepts.
func writeError(c *gin.Context, status int, code, msg string, details map[string]string) {
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", "Bearer")
	}
	if len(details) == 0 {
		details = nil
	}
	c.AbortWithStatusJSON(status, errorBody{Error: errorInfo{Code: code, Message: msg, Details: details}})
}

// invalid answers 400 invalid_argument naming the offending fields.
func invalid(c *gin.Context, msg string, details map[string]string) {
	writeError(c, http.StatusBadRequest, codeInvalidArgument, msg, details)
}

// fail answers for an error returned by a user-service call: its domain
// code and client-safe message, with the status of the one table
// (user.HTTPStatus). An unreachable service is 503 (the client may retry).
// Only 5xx are logged here, with the full error: 4xx are the client's
// business and show in the access log.
func (s *server) fail(c *gin.Context, op string, err error) {
	e := user.AsError(err)
	status, known := user.HTTPStatus(e.Code)
	if e.Code == user.CodeUnavailable {
		s.log.ErrorContext(c.Request.Context(), "user service unavailable", "op", op, "error", err)
		c.Header("Retry-After", "1") // shed load or a restarting instance: soon
		writeError(c, status, codeUnavailable, e.Message, nil)
		return
	}
	if status >= http.StatusInternalServerError {
		s.log.ErrorContext(c.Request.Context(), "user service call failed", "op", op, "error", err)
		// The message of an internal error never says more than this, even
		// if a future service version put a cause into it.
		writeError(c, http.StatusInternalServerError, codeInternal, "internal error", nil)
		return
	}
	if !known {
		writeError(c, http.StatusInternalServerError, codeInternal, "internal error", nil)
		return
	}
	if e.RetryAfter > 0 {
		setRetryAfter(c, e.RetryAfter)
	}
	writeError(c, status, string(e.Code), e.Message, e.Fields)
}
