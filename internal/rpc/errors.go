package rpc

import (
	"encoding/json"
	"errors"
	"net/http"

	merrors "go-micro.dev/v6/errors"

	"github.com/usersvc/usersvc/internal/user"
)

// errorBody is the JSON carried in a go-micro error's Detail: the client-safe
// message and, for invalid_argument, the offending fields.
type errorBody struct {
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

var statusOf = map[user.Code]int32{
	user.CodeInvalidArgument:   http.StatusBadRequest,
	user.CodeNotFound:          http.StatusNotFound,
	user.CodeAlreadyExists:     http.StatusConflict,
	user.CodeUnauthenticated:   http.StatusUnauthorized,
	user.CodePermissionDenied:  http.StatusForbidden,
	user.CodeResourceExhausted: http.StatusTooManyRequests,
	// 409: the request conflicts with the current state (the last admin).
	user.CodeFailedPrecondition: http.StatusConflict,
	user.CodeInternal:           http.StatusInternalServerError,
}

// toMicro turns a domain error into a go-micro error: Id is the domain code,
// Code the matching HTTP-style status (go-micro maps it to a gRPC code), and
// Detail the JSON errorBody. Internal causes never leave the process.
func toMicro(err error) error {
	if err == nil {
		return nil
	}
	e := user.AsError(err)
	b, _ := json.Marshal(errorBody{Message: e.Message, Fields: e.Fields})
	public := &merrors.Error{Id: string(e.Code), Code: statusOf[e.Code], Detail: string(b),
		Status: http.StatusText(int(statusOf[e.Code]))}
	if e.Code == user.CodeInternal {
		// Carry the cause to the logging wrapper, which logs it and sends
		// only the public error.
		return internalError{public: public, cause: err}
	}
	return public
}

// internalError pairs the client-safe error with its cause until logCalls
// has logged it.
type internalError struct {
	public *merrors.Error
	cause  error
}

func (e internalError) Error() string { return e.cause.Error() }

// codeOf is the domain code of a handler's result, "ok" for success.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var me *merrors.Error
	if errors.As(err, &me) {
		return me.Id
	}
	return string(user.CodeInternal)
}

// FromMicro turns an error returned by the go-micro client back into a domain
// *user.Error. Errors that did not come from our handler (no instance
// available, timeouts, transport failures) keep their meaning as
// internal errors whose message says what happened; Unavailable reports
// whether the call failed for lack of a reachable service instance.
func FromMicro(err error) *user.Error {
	if err == nil {
		return nil
	}
	var me *merrors.Error
	if errors.As(err, &me) {
		code := user.Code(me.Id)
		if _, ok := statusOf[code]; ok {
			var body errorBody
			if json.Unmarshal([]byte(me.Detail), &body) == nil {
				return &user.Error{Code: code, Message: body.Message, Fields: body.Fields}
			}
		}
	}
	return user.AsError(err)
}

// Unavailable reports whether err means no service instance could answer
// (none registered, all refusing connections, or the call timed out), as
// opposed to an answer from the service.
func Unavailable(err error) bool {
	var me *merrors.Error
	if !errors.As(err, &me) {
		return false
	}
	if _, ours := statusOf[user.Code(me.Id)]; ours {
		return false
	}
	return me.Code == http.StatusServiceUnavailable || me.Code == http.StatusRequestTimeout ||
		me.Code == http.StatusInternalServerError && me.Id == "go.micro.client"
}

func userCode(id string) user.Code { return user.Code(id) }
