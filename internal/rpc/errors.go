package rpc

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	merrors "go-micro.dev/v6/errors"

	"github.com/usersvc/usersvc/internal/user"
)

// errorBody is the JSON carried in a go-micro error's Detail: the client-safe
// message, for invalid_argument the offending fields, and for
// resource_exhausted when to retry.
type errorBody struct {
	Message      string            `json:"message"`
	Fields       map[string]string `json:"fields,omitempty"`
	RetryAfterMS int64             `json:"retry_after_ms,omitempty"`
}

// ours reports whether a go-micro error id is one of the domain's codes,
// i.e. an answer from our handler rather than from the framework.
func ours(id string) bool {
	_, ok := user.HTTPStatus(user.Code(id))
	return ok
}

// toMicro turns a domain error into a go-micro error: Id is the domain code,
// Code the matching HTTP-style status (go-micro maps it to a gRPC code), and
// Detail the JSON errorBody. Internal causes never leave the process.
func toMicro(err error) error {
	if err == nil {
		return nil
	}
	e := user.AsError(err)
	b, _ := json.Marshal(errorBody{Message: e.Message, Fields: e.Fields, RetryAfterMS: e.RetryAfter.Milliseconds()})
	status, _ := user.HTTPStatus(e.Code)
	public := &merrors.Error{Id: string(e.Code), Code: int32(status), Detail: string(b),
		Status: http.StatusText(status)}
	if e.Code == user.CodeInternal || errors.Is(err, user.ErrDatabaseUnavailable) {
		// Carry the cause to the logging wrapper, which logs it and sends
		// only the public error. An unreachable database is logged too: it
		// is this instance's fault, and the cause names the database.
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
// *user.Error. An answer from our handler keeps its code, message and
// fields; a call no instance could answer (none registered, all refusing
// connections, or out of time) is CodeUnavailable; anything else is an
// internal error whose message reveals nothing.
func FromMicro(err error) *user.Error {
	if err == nil {
		return nil
	}
	var me *merrors.Error
	if errors.As(err, &me) {
		if ours(me.Id) {
			var body errorBody
			if json.Unmarshal([]byte(me.Detail), &body) == nil {
				return &user.Error{Code: user.Code(me.Id), Message: body.Message, Fields: body.Fields,
					RetryAfter: time.Duration(body.RetryAfterMS) * time.Millisecond}
			}
		}
		if unavailable(me) {
			return user.Unavailable(err)
		}
	}
	return user.AsError(err)
}

// unavailable reports whether a framework error means no service instance
// could answer, as opposed to an answer from the service.
func unavailable(me *merrors.Error) bool {
	return me.Code == http.StatusServiceUnavailable || me.Code == http.StatusRequestTimeout ||
		me.Code == http.StatusInternalServerError && me.Id == "go.micro.client"
}
