package userclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	merrors "go-micro.dev/v6/errors"
)

// Error is an answer of the user service that is not a success, or a call
// that could not reach it (Code "unavailable"). Compare with errors.Is
// against the Err* values, which match on Code.
type Error struct {
	Code    string // machine-readable, e.g. "not_found"
	Message string // safe to show
	// Fields names the offending request fields of an invalid_argument.
	Fields map[string]string
	// RetryAfter is set on resource_exhausted.
	RetryAfter time.Duration
	cause      error // a transport failure, for logs
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("usersvc: %s: %v", e.Code, e.cause)
	}
	if e.Message == "" {
		return "usersvc: " + e.Code
	}
	return fmt.Sprintf("usersvc: %s: %s", e.Code, e.Message)
}

// Is matches errors of the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap returns the transport failure of an unavailable call.
func (e *Error) Unwrap() error { return e.cause }

// The codes the user service answers with.
var (
	ErrInvalidArgument    = &Error{Code: "invalid_argument"}
	ErrNotFound           = &Error{Code: "not_found"}
	ErrAlreadyExists      = &Error{Code: "already_exists"}
	ErrUnauthenticated    = &Error{Code: "unauthenticated"}
	ErrPermissionDenied   = &Error{Code: "permission_denied"}
	ErrResourceExhausted  = &Error{Code: "resource_exhausted"}
	ErrFailedPrecondition = &Error{Code: "failed_precondition"}
	ErrEmailNotVerified   = &Error{Code: "email_not_verified"}
	ErrUnavailable        = &Error{Code: "unavailable"}
	ErrInternal           = &Error{Code: "internal"}
)

var known = map[string]bool{}

func init() {
	for _, e := range []*Error{ErrInvalidArgument, ErrNotFound, ErrAlreadyExists, ErrUnauthenticated, ErrPermissionDenied,
		ErrResourceExhausted, ErrFailedPrecondition, ErrEmailNotVerified, ErrUnavailable, ErrInternal} {
		known[e.Code] = true
	}
}

// fromMicro turns a call's error into an *Error: the service's own answers
// carry their code as the go-micro error Id and a JSON body as Detail;
// anything else means no instance answered.
func fromMicro(err error) error {
	if err == nil {
		return nil
	}
	var me *merrors.Error
	if errors.As(err, &me) && known[me.Id] {
		var body struct {
			Message      string            `json:"message"`
			Fields       map[string]string `json:"fields"`
			RetryAfterMS int64             `json:"retry_after_ms"`
		}
		_ = json.Unmarshal([]byte(me.Detail), &body) // a body we cannot read still has its code
		return &Error{Code: me.Id, Message: body.Message, Fields: body.Fields,
			RetryAfter: time.Duration(body.RetryAfterMS) * time.Millisecond}
	}
	if errors.As(err, &me) && me.Code != http.StatusServiceUnavailable && me.Code != http.StatusRequestTimeout &&
		me.Id != "go.micro.client" {
		return &Error{Code: ErrInternal.Code, cause: err}
	}
	return &Error{Code: ErrUnavailable.Code, cause: err}
}
