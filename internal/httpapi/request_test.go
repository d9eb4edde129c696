package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
)

// jsonRoute is one route that takes a JSON body, with a body it accepts and
// one of its string fields (for the wrong-type case).
type jsonRoute struct {
	method, path string
	auth         bool
	valid        string
	stringField  string
}

// TestJSONBodyParsing checks that every JSON route rejects bad bodies in the
// same way: they all go through bindJSON, and this table keeps it so.
func TestJSONBodyParsing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) { c.MaxBodyBytes = 1 << 10 })
	self := e.register("parse@example.com", "Parse")
	routes := []jsonRoute{
		{"POST", "/user", false, `{"email":"x@example.com","password":"` + userPassword + `","name":"X"}`, "email"},
		{"PUT", "/user/" + self.ID, true, `{"name":"New"}`, "name"},
		{"POST", "/user/token", false, `{"email":"parse@example.com","password":"` + userPassword + `"}`, "password"},
		{"DELETE", "/user/token", false, `{"refresh_token":"abc"}`, "refresh_token"},
		{"POST", "/user/password", false, `{"email":"parse@example.com"}`, "email"},
		{"PUT", "/user/password", false, `{"token":"abc","password":"` + newPassword + `"}`, "token"},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			e := e.with(t)
			hdr := func(ct string) http.Header {
				h := http.Header{}
				if ct != "" {
					h.Set("Content-Type", ct)
				}
				if rt.auth {
					h.Set("Authorization", "Bearer "+self.Access)
				}
				return h
			}
			const js = "application/json"

			e.Send(rt.method, rt.path, hdr(""), rt.valid).WantError(415, "unsupported_media_type")
			e.Send(rt.method, rt.path, hdr("text/plain"), rt.valid).WantError(415, "unsupported_media_type")
			e.Send(rt.method, rt.path, hdr("application/x-www-form-urlencoded"), "email=a").
				WantError(415, "unsupported_media_type")

			big := `{"` + rt.stringField + `":"` + strings.Repeat("a", 2<<10) + `"}`
			e.Send(rt.method, rt.path, hdr(js), big).WantError(413, "payload_too_large")

			e.Send(rt.method, rt.path, hdr(js), `{"`+rt.stringField+`":"a","bogus":1}`).
				WantError(400, "invalid_argument", "bogus")
			e.Send(rt.method, rt.path, hdr(js), `{"`+rt.stringField+`":`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), `{"`+rt.stringField+`" "a"}`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), rt.valid+`{}`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), rt.valid+` x`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), ``).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), `[]`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), `"text"`).WantError(400, "invalid_argument")
			e.Send(rt.method, rt.path, hdr(js), `{"`+rt.stringField+`":42}`).
				WantError(400, "invalid_argument", rt.stringField)
			e.Send(rt.method, rt.path, hdr(js), `{"`+rt.stringField+`":{"a":1}}`).
				WantError(400, "invalid_argument", rt.stringField)
		})
	}
}

// TestJSONContentTypeParameters accepts the usual charset parameter and
// trailing white space after the object.
func TestJSONContentTypeParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	e.Send("POST", "/user/password", h, "{\"email\":\"nobody@example.com\"}\n  \n").WantStatus(202)
}

func TestBodyLimitDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := http.Header{"Content-Type": {"application/json"}}
	// 64 KiB is the default: a body just over it is refused whole...
	big := `{"email":"` + strings.Repeat("a", 64<<10) + `"}`
	e.Send("POST", "/user/password", h, big).WantError(413, "payload_too_large")
	// ...one well under it reaches validation.
	e.Send("POST", "/user/password", h, `{"email":"`+strings.Repeat("a", 60<<10)+`"}`).
		WantError(400, "invalid_argument", "email")
}

func TestListQueryParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.admin.Access
	for _, tc := range []struct {
		query, field string
	}{
		{"page=abc", "page"},
		{"page=1.5", "page"},
		{"page=0", "page"},
		{"page=-1", "page"},
		{"page=10001", "page"},
		{"page=99999999999999999999", "page"},
		{"page_size=x", "page_size"},
		{"page_size=0", "page_size"},
		{"page_size=101", "page_size"},
		{"role=root", "role"},
		{"status=gone", "status"},
		{"cursor=not-a-cursor", "cursor"},
		{"q=" + strings.Repeat("a", 101), "q"},
	} {
		r := e.Send("GET", "/user?"+tc.query, http.Header{"Authorization": {"Bearer " + tok}}, "")
		r.WantError(400, "invalid_argument", tc.field)
	}
	// Several bad parameters are reported together.
	r := e.Send("GET", "/user?page=x&page_size=y&role=z", http.Header{"Authorization": {"Bearer " + tok}}, "")
	r.WantError(400, "invalid_argument", "page", "page_size", "role")
}

// TestInvalidUTF8IsClientError: bytes protobuf strings cannot carry are
// refused at the edge as the client's mistake, never sent on as a server
// failure.
func TestInvalidUTF8IsClientError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Send("GET", "/user?q=%FF", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "q")
	e.Send("GET", "/user?cursor=%FF", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "cursor")
	e.Send("GET", "/user/%FF", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "id")
	e.Send("PUT", "/user/%FF", apiclient.JSONHeader(e.admin.Access), `{}`).WantError(400, "invalid_argument", "id")
	e.Send("DELETE", "/user/%FF", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "id")
	e.Send("GET", "/user/"+e.admin.ID, apiclient.Bearer("a\xffb"), "").WantError(401, "unauthenticated")
	// A JSON body that is not UTF-8 is refused, not repaired with U+FFFD.
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), "{\"email\":\"a\xff@example.com\",\"password\":\"x\"}").
		WantError(400, "invalid_argument")
}
