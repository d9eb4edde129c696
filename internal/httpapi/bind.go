package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// bindJSON is the one request-body parser of the API, so every JSON route
// rejects the same things the same way:
//
//   - a Content-Type other than application/json (or a +json type): 415;
//   - a body over Config.MaxBodyBytes: 413, without reading the rest (the
//     limitBody middleware caps every request body);
//   - an empty body, malformed JSON, or anything after the object: 400;
//   - an unknown field or a value of the wrong type: 400 naming the field.
//
// Unknown fields are errors rather than ignored so that a typo such as
// "pasword" is reported instead of silently dropping the change. On failure
// the response is written and ok is false; the handler just returns.
func bindJSON[T any](c *gin.Context) (v T, ok bool) {
	if !isJSON(c.GetHeader("Content-Type")) {
		writeError(c, http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
			"the request body must be JSON (Content-Type: application/json)", nil)
		return v, false
	}
	// Read first (the body is capped by limitBody): JSON must be UTF-8 (RFC
	// 8259), and the decoder would silently turn bad bytes into U+FFFD,
	// which would then be stored as if the client had sent it.
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		bodyError(c, err)
		return v, false
	}
	if !utf8.Valid(body) {
		invalid(c, "the request body must be valid UTF-8", nil)
		return v, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		bodyError(c, err)
		return v, false
	}
	// Exactly one value: `{…}{…}` or `{…} x` is a client bug, not something
	// to half-accept.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			bodyError(c, err)
		} else {
			invalid(c, "the request body must contain a single JSON object", nil)
		}
		return v, false
	}
	return v, true
}

// isJSON accepts application/json and structured-syntax +json types, with any
// parameters (charset=utf-8 is common and harmless).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// bodyError answers for a Decode error. The messages come from the decoder's
// typed errors, never from the body's content, except field names the
// client chose itself.
func bodyError(c *gin.Context, err error) {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		writeError(c, http.StatusRequestEntityTooLarge, codePayloadTooLarge,
			fmt.Sprintf("the request body must be at most %d bytes", tooLarge.Limit), nil)
	case errors.Is(err, io.EOF):
		invalid(c, "the request body is empty; it must be a JSON object", nil)
	case errors.As(err, &syntax):
		invalid(c, fmt.Sprintf("the request body is not valid JSON (at byte %d)", syntax.Offset), nil)
	case errors.Is(err, io.ErrUnexpectedEOF):
		invalid(c, "the request body is not valid JSON (truncated)", nil)
	case errors.As(err, &typ):
		if typ.Field == "" {
			invalid(c, "the request body must be a JSON object", nil)
			return
		}
		invalid(c, "invalid request", map[string]string{typ.Field: "must be " + jsonKind(typ.Type)})
	default:
		// encoding/json has no typed error for an unknown field; its
		// message is `json: unknown field "name"`.
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if n, err := strconv.Unquote(name); err == nil {
				name = n
			}
			invalid(c, "invalid request", map[string]string{name: "is not a known field"})
			return
		}
		invalid(c, "the request body is not valid JSON", nil)
	}
}

// jsonKind names the JSON type a Go type decodes from, for error details.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// queryInt parses an optional integer query parameter in [min, max]; absent
// or empty is 0 (the service's default). A bad value is reported in details
// under the parameter's name.
func queryInt(c *gin.Context, name string, minV, maxV int, details map[string]string) int32 {
	raw := c.Query(name)
	if raw == "" {
		return 0
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < minV || n > maxV {
		details[name] = fmt.Sprintf("must be an integer between %d and %d", minV, maxV)
		return 0
	}
	return int32(n)
}

// textParam returns a path or query parameter bound for a protobuf string
// field. Protobuf strings must be valid UTF-8 and the RPC client refuses to
// send anything else, which would surface as a server-side failure; invalid
// bytes (e.g. %FF in the URL) are the client's error, reported in details
// under name with problem. JSON bodies need no such check: encoding/json
// already replaces invalid UTF-8.
func textParam(value, name, problem string, details map[string]string) string {
	if !utf8.ValidString(value) {
		details[name] = problem
		return ""
	}
	return value
}

// userID is the :id path parameter, or ok false after answering 400.
func userID(c *gin.Context) (id string, ok bool) {
	details := map[string]string{}
	id = textParam(c.Param("id"), "id", "must be a UUID", details)
	if len(details) > 0 {
		invalid(c, "invalid request", details)
		return "", false
	}
	return id, true
}
