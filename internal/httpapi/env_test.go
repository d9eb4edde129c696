package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v6/metadata"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// Passwords that pass password.DefaultPolicy (zxcvbn score 4).
const (
	adminPassword = "correct horse battery staple"
	userPassword  = "Tr0ub4dor&3xyz"
	newPassword   = "kV9#mQ2!xL-7pw"

	testIssuer, testAudience = stack.Issuer, stack.Audience
)

// env is the real stack in one process: SQLite store, token manager,
// argon2id hasher (cheap parameters), mail directory, user service, go-micro
// gRPC server and client over an in-memory registry, and the HTTP API in an
// httptest server. Nothing is faked, so the tests exercise the same code
// paths as production, only the database and registry differ.
type env struct {
	*apiclient.Client // the API's test client, reporting to t

	t       *testing.T
	svc     *flows.Service
	rpcSrv  *rpc.Server
	spy     *handlerSpy
	handler http.Handler
	http    *httptest.Server
	keys    *token.Keyring
	store   *sqlstore.Store
	mailDir string
	logs    *testenv.LogBuffer

	rpcStopped bool

	admin session // a bootstrapped admin, signed in
}

// session is a signed-in user as the tests see it.
type session struct {
	ID, Email, Password string
	Access, Refresh     string
}

// envOption adjusts the API configuration.
type envOption func(*httpapi.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, stack.Options{}, opts...)
}

// newEnvOn is newEnv with the service built from so (its Logger is set
// here).
func newEnvOn(t *testing.T, so stack.Options, opts ...envOption) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &testenv.LogBuffer{}
	log := telemetry.NewJSONLogger(logs, slog.LevelDebug, "user.api") // the processes' logger

	so.Logger = log
	st := stack.New(t, so)
	svc, keys, store, mailDir := st.Service, st.Keys, st.Store, st.MailDir

	reg := rpc.NewMemoryRegistry()
	spy := &handlerSpy{Handler: rpc.NewHandler(svc, keys.JWKS, rpc.ClientLimits{})}
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, GracePeriod: time.Second},
		spy)
	if err != nil {
		t.Fatalf("start rpc server: %v", err)
	}
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, Timeout: 10 * time.Second})

	cfg := httpapi.Config{}
	for _, o := range opts {
		o(&cfg)
	}
	handler := httpapi.New(cfg, users, log)
	hs := httptest.NewServer(handler)
	t.Cleanup(hs.Close)

	client := apiclient.New(t, hs.URL)
	client.HTTP = hs.Client()
	e := &env{Client: client, t: t, svc: svc, rpcSrv: srv, spy: spy, handler: handler, http: hs, mailDir: mailDir, logs: logs, keys: keys,
		store: store}
	t.Cleanup(func() {
		if !e.rpcStopped {
			_ = srv.Stop()
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	// The first admin can only come from an internal caller.
	admin, err := svc.Create(ctx, user.SystemActor, user.CreateInput{Email: "admin@example.com",
		Password: adminPassword, Name: "Admin", Role: user.RoleAdmin})
	if err != nil {
		t.Fatalf("bootstrap admin: %v", err)
	}
	// Signed in in process, not through the API: a test that gives the API
	// a short RPC timeout (TestRPCTimeout) must not have its setup's
	// argon2 sign-in, slow on a loaded machine, time out.
	s, err := svc.Auth(ctx, admin.Email, adminPassword)
	if err != nil {
		t.Fatalf("sign the admin in: %v", err)
	}
	e.admin = session{ID: admin.ID, Email: admin.Email, Password: adminPassword, Access: s.AccessToken, Refresh: s.RefreshToken}
	return e
}

// stopRPC stops the user service, so the API can no longer reach it.
func (e *env) stopRPC() {
	e.t.Helper()
	if err := e.rpcSrv.Stop(); err != nil {
		e.t.Fatalf("stop rpc server: %v", err)
	}
	e.rpcStopped = true
}

// login signs in through the API and returns the session.
func (e *env) login(email, pw string) session {
	e.t.Helper()
	r := e.Do("POST", "/user/token", "", map[string]any{"email": email, "password": pw})
	r.WantStatus(200)
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	r.Decode(&tok)
	return session{Email: email, Password: pw, Access: tok.AccessToken, Refresh: tok.RefreshToken}
}

// register creates a user through the API and signs them in.
func (e *env) register(email, name string) session {
	e.t.Helper()
	r := e.Do("POST", "/user", "", map[string]any{"email": email, "password": userPassword, "name": name})
	r.WantStatus(201)
	var u apiclient.User
	r.Decode(&u)
	s := e.login(email, userPassword)
	s.ID = u.ID
	return s
}

// Subjects of the mails the tests read.
const (
	resetSubject  = "Reset your password"
	verifySubject = "Confirm your email address"
)

// resetToken returns the token of the newest reset mail sent to addr,
// waiting a few seconds for it to arrive.
func (e *env) resetToken(addr string) string {
	e.t.Helper()
	return e.mailToken(addr, resetSubject)
}

// verifyToken is resetToken for the verification mail.
func (e *env) verifyToken(addr string) string {
	e.t.Helper()
	return e.mailToken(addr, verifySubject)
}

// mailToken returns the token of the newest mail with subject sent to
// addr, waiting a few seconds for it to arrive.
func (e *env) mailToken(addr, subject string) string {
	e.t.Helper()
	return mail.ResetToken(testenv.WaitMail(e.t, e.mailDir, addr, subject, 5*time.Second).Text)
}

// mails returns the messages with subject in the mail directory.
func (e *env) mails(subject string) []mail.Stored {
	e.t.Helper()
	msgs, err := mail.ReadDir(e.mailDir)
	if err != nil {
		e.t.Fatalf("read mail: %v", err)
	}
	var out []mail.Stored
	for _, m := range msgs {
		if m.Subject() == subject {
			out = append(out, m)
		}
	}
	return out
}

// mailCount is the number of messages with subject in the mail directory
// once it holds at least want, or after a few seconds: mail goes out
// asynchronously (outbox → bus → mailer), so a test waits for what it
// expects.
func (e *env) mailCount(subject string, want int) int {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := len(e.mails(subject))
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handlerSpy is the real RPC handler, recording the request ID each Get or
// Validate call received in its go-micro metadata, to prove the API forwards
// it across the wire.
type handlerSpy struct {
	*rpc.Handler
	mu    sync.Mutex
	calls []spiedCall
	// keysDelay makes Keys slow, to provoke the API's RPC timeout.
	keysDelay atomic.Int64 // nanoseconds
}

// spiedCall is one RPC the service received: its method and the request ID
// of its metadata.
type spiedCall struct{ Method, RequestID string }

func (h *handlerSpy) record(ctx context.Context, method string) {
	// gRPC lower-cases metadata keys on the wire.
	md, _ := metadata.FromContext(ctx)
	var id string
	for k, v := range md {
		if strings.EqualFold(k, "X-Request-Id") {
			id = v
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, spiedCall{Method: method, RequestID: id})
}

// callsOf returns the methods called with request ID id, in order.
func (h *handlerSpy) callsOf(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		if c.RequestID == id {
			out = append(out, c.Method)
		}
	}
	return out
}

func (h *handlerSpy) Get(ctx context.Context, in *userv1.GetRequest, out *userv1.GetResponse) error {
	h.record(ctx, "Get")
	return h.Handler.Get(ctx, in, out)
}

func (h *handlerSpy) Pagination(ctx context.Context, in *userv1.PaginationRequest, out *userv1.PaginationResponse) error {
	h.record(ctx, "Pagination")
	return h.Handler.Pagination(ctx, in, out)
}

func (h *handlerSpy) Create(ctx context.Context, in *userv1.CreateRequest, out *userv1.CreateResponse) error {
	h.record(ctx, "Create")
	return h.Handler.Create(ctx, in, out)
}

func (h *handlerSpy) Update(ctx context.Context, in *userv1.UpdateRequest, out *userv1.UpdateResponse) error {
	h.record(ctx, "Update")
	return h.Handler.Update(ctx, in, out)
}

func (h *handlerSpy) Delete(ctx context.Context, in *userv1.DeleteRequest, out *userv1.DeleteResponse) error {
	h.record(ctx, "Delete")
	return h.Handler.Delete(ctx, in, out)
}

func (h *handlerSpy) Auth(ctx context.Context, in *userv1.AuthRequest, out *userv1.AuthResponse) error {
	h.record(ctx, "Auth")
	return h.Handler.Auth(ctx, in, out)
}

func (h *handlerSpy) Validate(ctx context.Context, in *userv1.ValidateRequest, out *userv1.ValidateResponse) error {
	h.record(ctx, "Validate")
	return h.Handler.Validate(ctx, in, out)
}

func (h *handlerSpy) CreatePasswordReset(ctx context.Context, in *userv1.CreatePasswordResetRequest, out *userv1.CreatePasswordResetResponse) error {
	h.record(ctx, "CreatePasswordReset")
	return h.Handler.CreatePasswordReset(ctx, in, out)
}

func (h *handlerSpy) ResetPassword(ctx context.Context, in *userv1.ResetPasswordRequest, out *userv1.ResetPasswordResponse) error {
	h.record(ctx, "ResetPassword")
	return h.Handler.ResetPassword(ctx, in, out)
}

func (h *handlerSpy) VerifyEmail(ctx context.Context, in *userv1.VerifyEmailRequest, out *userv1.VerifyEmailResponse) error {
	h.record(ctx, "VerifyEmail")
	return h.Handler.VerifyEmail(ctx, in, out)
}

func (h *handlerSpy) ResendVerification(ctx context.Context, in *userv1.ResendVerificationRequest, out *userv1.ResendVerificationResponse) error {
	h.record(ctx, "ResendVerification")
	return h.Handler.ResendVerification(ctx, in, out)
}

func (h *handlerSpy) Refresh(ctx context.Context, in *userv1.RefreshRequest, out *userv1.AuthResponse) error {
	h.record(ctx, "Refresh")
	return h.Handler.Refresh(ctx, in, out)
}

func (h *handlerSpy) Revoke(ctx context.Context, in *userv1.RevokeRequest, out *userv1.RevokeResponse) error {
	h.record(ctx, "Revoke")
	return h.Handler.Revoke(ctx, in, out)
}

// with returns a copy of the env that reports to t, for subtests.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	c.Client = e.Client.With(t)
	return &c
}

// serveFrom calls the handler directly as if the TCP peer were remoteAddr
// (which a real client connection from the test cannot fake), through the
// test client, so the exchange is checked like any other.
func (e *env) serveFrom(remoteAddr, method, path string, hdr http.Header) *apiclient.Response {
	e.t.Helper()
	c := e.Client.With(e.t)
	c.HTTP = &http.Client{Transport: peerTransport{handler: e.handler, remoteAddr: remoteAddr}}
	return c.Send(method, path, hdr, "")
}

// peerTransport serves each request with handler in process, the request
// coming from remoteAddr.
type peerTransport struct {
	handler    http.Handler
	remoteAddr string
}

func (p peerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.RemoteAddr = p.remoteAddr
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// expiredToken is an access token for subject, correctly signed with the
// service's key, that expired an hour ago.
func (e *env) expiredToken(subject string) string {
	e.t.Helper()
	m, err := token.NewManager(e.keys, token.Config{Issuer: testIssuer, Audience: testAudience, TTL: time.Minute,
		Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		e.t.Fatalf("token manager: %v", err)
	}
	tok, _, err := m.Issue(context.Background(), subject, "user", 0, "", false, token.SignIn{})
	if err != nil {
		e.t.Fatalf("issue: %v", err)
	}
	return tok
}

func (h *handlerSpy) Keys(ctx context.Context, in *userv1.KeysRequest, out *userv1.KeysResponse) error {
	select {
	case <-time.After(time.Duration(h.keysDelay.Load())):
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.Handler.Keys(ctx, in, out)
}
