package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAPI answers every request with status, header and body, echoing the
// request's X-Request-ID unless the header sets one.
type fakeAPI struct {
	status int
	header http.Header
	body   string
}

func (f fakeAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	for k, vs := range f.header {
		rec.Header()[k] = vs
	}
	if rec.Header().Get("X-Request-ID") == "" {
		rec.Header().Set("X-Request-ID", req.Header.Get("X-Request-ID"))
	}
	rec.WriteHeader(f.status)
	_, _ = io.WriteString(rec, f.body)
	return rec.Result(), nil
}

const errorBody = `{"error":{"code":"not_found","message":"no such path"}}`

// TestCheck: the contract check passes a conforming exchange and names
// each way one breaks the contract.
func TestCheck(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name string
		req  Request
		api  fakeAPI
		want []string // substrings of the check error; none: no error
	}{
		{"unrouted 404 with the Error schema", Request{Method: "GET", Path: "/nope"},
			fakeAPI{404, jsonCT, errorBody}, nil},
		{"unrouted answered 200", Request{Method: "GET", Path: "/nope"},
			fakeAPI{200, jsonCT, errorBody}, []string{"not in api/openapi.yaml"}},
		{"unrouted error not JSON", Request{Method: "GET", Path: "/nope"},
			fakeAPI{404, http.Header{"Content-Type": {"text/plain"}}, "404 page not found"},
			[]string{"error Content-Type", "error body is not JSON"}},
		{"unrouted error off the schema", Request{Method: "GET", Path: "/nope"},
			fakeAPI{404, jsonCT, `{"error":"not found"}`}, []string{"does not match the Error schema"}},
		{"405 without Allow", Request{Method: "PATCH", Path: "/healthz"},
			fakeAPI{405, jsonCT, `{"error":{"code":"method_not_allowed","message":"no"}}`}, []string{"405 without Allow"}},
		{"undeclared body", Request{Method: "DELETE", Path: "/user/token"},
			fakeAPI{204, nil, "gone"}, []string{"has a body the document does not declare"}},
		{"undeclared status", Request{Method: "DELETE", Path: "/user/token"},
			fakeAPI{200, nil, ""}, []string{"response 200 does not match"}},
		{"valid request without its bearer", Request{Method: "GET", Path: "/user/0190b7a8-0000-7000-8000-000000000000", Valid: true},
			fakeAPI{404, jsonCT, errorBody}, []string{"request does not match"}},
		{"invalid request not checked", Request{Method: "GET", Path: "/user/0190b7a8-0000-7000-8000-000000000000"},
			fakeAPI{404, jsonCT, errorBody}, nil},
		{"ID not echoed", Request{Method: "GET", Path: "/nope"},
			fakeAPI{404, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"other"}}, errorBody},
			[]string{"came back as"}},
		{"ID not echoed, none asked for", Request{Method: "GET", Path: "/nope", NoID: true},
			fakeAPI{404, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"generated"}}, errorBody}, nil},
		{"two IDs", Request{Method: "GET", Path: "/nope", NoID: true},
			fakeAPI{404, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a", "b"}}, errorBody},
			[]string{"2 X-Request-ID headers"}},
		{"caller's ID under a non-canonical key", Request{Method: "GET", Path: "/nope",
			Header: http.Header{"X-Request-ID": {"mine"}}},
			fakeAPI{404, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"mine"}}, errorBody}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(t, "http://api.test")
			c.HTTP = &http.Client{Transport: tc.api}
			r, err := c.Try(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 0 && r.CheckErr != nil {
				t.Errorf("check failed a conforming exchange: %v", r.CheckErr)
			}
			if len(tc.want) > 0 && r.CheckErr == nil {
				t.Errorf("check passed, want %q", tc.want)
			}
			for _, w := range tc.want {
				if r.CheckErr != nil && !strings.Contains(r.CheckErr.Error(), w) {
					t.Errorf("check error %v does not say %q", r.CheckErr, w)
				}
			}
		})
	}
}

// TestTryTransportError: a failed round trip is Try's error, not a check
// failure.
func TestTryTransportError(t *testing.T) {
	c := New(t, "http://api.test")
	broken := errors.New("connection refused")
	c.HTTP = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, broken })}
	if _, err := c.Try(context.Background(), Request{Method: "GET", Path: "/healthz"}); !errors.Is(err, broken) {
		t.Errorf("Try error %v, want %v", err, broken)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRequestID: the client sends a fresh ID per request unless the
// caller sets one or asks for none.
func TestRequestID(t *testing.T) {
	var got []string
	c := New(t, "http://api.test")
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, strings.Join(r.Header.Values("X-Request-ID"), ","))
		return fakeAPI{404, http.Header{"Content-Type": {"application/json"}}, errorBody}.RoundTrip(r)
	})}
	c.Send("GET", "/nope", nil, "")
	c.With(t).Send("GET", "/nope", nil, "")
	c.Exchange(Request{Method: "GET", Path: "/nope"}.WithID("mine"))
	if len(got) != 3 || got[0] == "" || got[1] == "" || got[0] == got[1] || got[2] != "mine" {
		t.Errorf("request IDs sent %q, want two distinct fresh ones, then mine", got)
	}
	got = nil
	c.Exchange(Request{Method: "GET", Path: "/nope", NoID: true})
	if len(got) != 1 || got[0] != "" {
		t.Errorf("NoID request sent IDs %q", got)
	}
}
