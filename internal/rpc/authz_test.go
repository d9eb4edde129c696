package rpc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/factor/webauthntest"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// matrixCell is one cell of docs/design.md's authorization matrix: an
// operation by a kind of caller on a kind of target, and the answer.
type matrixCell struct {
	op, target, caller, want string
}

// readMatrix reads the authorization matrix from docs/design.md: the rule
// as written is the rule as tested.
func readMatrix(t *testing.T) []matrixCell {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cells []matrixCell
	var header []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- authorization matrix"):
			in = true
			continue
		case strings.HasPrefix(line, "<!-- end of authorization matrix"):
			in = false
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		row := strings.Split(strings.Trim(line, "| "), "|")
		for i := range row {
			row[i] = strings.TrimSpace(row[i])
		}
		if header == nil {
			header = row
			continue
		}
		if len(row) != len(header) {
			t.Fatalf("matrix row %q has %d cells, the header %d", line, len(row), len(header))
		}
		for i := 2; i < len(row); i++ {
			if row[i] != "—" {
				cells = append(cells, matrixCell{op: row[0], target: row[1], caller: header[i], want: row[i]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cells) == 0 {
		t.Fatal("no authorization matrix in docs/design.md")
	}
	return cells
}

// matrixWorld is a user service on a database of its own, reached over its
// gRPC port, with the callers of the matrix. In the last-admin world the
// only admin is solo, the target of every "last admin" row.
type matrixWorld struct {
	t       *testing.T
	st      *stack.Stack
	d       *direct
	seq     int
	other   *user.User // the plain user of "user (other)"
	root    *user.User // the admin of "admin (other)"; nil with a solo admin
	solo    *user.User
	clients map[string][2]string // scope → client id, secret
}

func newMatrixWorld(t *testing.T, lastAdmin bool) *matrixWorld {
	st := stack.New(t, stack.Options{})
	w := &matrixWorld{t: t, st: st, d: dialDirect(t, startServer(t, st, nil), insecure.NewCredentials()),
		clients: map[string][2]string{}}
	w.other = w.newUser(user.RoleUser)
	if lastAdmin {
		w.solo = w.newUser(user.RoleAdmin)
	} else {
		w.root = w.newUser(user.RoleAdmin)
	}
	for _, sc := range user.Scopes {
		acct, secret, err := st.Service.CreateServiceAccount(t.Context(), user.SystemActor, "svc-"+strings.ReplaceAll(string(sc), ":", "-"), []user.Scope{sc})
		if err != nil {
			t.Fatal(err)
		}
		w.clients[string(sc)] = [2]string{acct.ID, secret}
	}
	return w
}

func (w *matrixWorld) email() string {
	w.seq++
	return fmt.Sprintf("m%d@example.com", w.seq)
}

func (w *matrixWorld) newUser(role user.Role) *user.User {
	w.t.Helper()
	u, err := w.st.Service.Create(w.t.Context(), user.SystemActor, user.CreateInput{Email: w.email(), Password: pw, Name: "M", Role: role})
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// session signs u in, for a bearer token or the token rows' credentials.
func (w *matrixWorld) session(u *user.User) *user.Session {
	w.t.Helper()
	s, err := w.st.Service.Auth(w.t.Context(), u.Email, pw)
	if err != nil {
		w.t.Fatalf("sign in %s: %v", u.Email, err)
	}
	return s
}

// target makes the cell's target: its ID and address, and the user when
// it is one.
func (w *matrixWorld) target(kind string) (id, email string, u *user.User) {
	w.t.Helper()
	switch kind {
	case "user":
		u = w.newUser(user.RoleUser)
	case "admin":
		u = w.newUser(user.RoleAdmin)
	case "last admin":
		u = w.solo
	case "service account":
		acct, _, err := w.st.Service.CreateServiceAccount(w.t.Context(), user.SystemActor, fmt.Sprintf("target-%d", w.seq), []user.Scope{user.ScopeRead})
		if err != nil {
			w.t.Fatal(err)
		}
		w.seq++
		return acct.ID, w.email(), nil
	case "missing":
		return uuid.NewString(), w.email(), nil
	case "—":
		return "", w.email(), nil
	default:
		w.t.Fatalf("unknown target kind %q", kind)
	}
	return u.ID, u.Email, u
}

// bearer is the access token of the cell's caller ("" for anonymous).
func (w *matrixWorld) bearer(caller string, target *user.User) string {
	w.t.Helper()
	switch caller {
	case "anonymous":
		return ""
	case "user (self)", "admin (self)":
		return w.session(target).AccessToken
	case "user (other)":
		return w.session(w.other).AccessToken
	case "admin (other)":
		return w.session(w.root).AccessToken
	}
	c, ok := w.clients[caller]
	if !ok {
		w.t.Fatalf("unknown caller kind %q", caller)
	}
	cs, err := w.st.Service.AuthClient(w.t.Context(), c[0], c[1])
	if err != nil {
		w.t.Fatal(err)
	}
	return cs.AccessToken
}

// request builds the cell's RPC: the method and its message.
func (w *matrixWorld) request(op, id, email string, target *user.User) (string, proto.Message, proto.Message) {
	w.t.Helper()
	flip := userv1.Role_ROLE_ADMIN
	if target != nil && target.Role == user.RoleAdmin {
		flip = userv1.Role_ROLE_USER
	}
	switch op {
	case "Get":
		return op, &userv1.GetRequest{Id: id}, &userv1.GetResponse{}
	case "Pagination":
		return op, &userv1.PaginationRequest{}, &userv1.PaginationResponse{}
	case "Create user", "Create admin":
		in := &userv1.CreateRequest{Email: email, Password: pw, Name: "New"}
		if op == "Create admin" {
			in.Role = userv1.Role_ROLE_ADMIN
		}
		return "Create", in, &userv1.CreateResponse{}
	case "Update name":
		return "Update", &userv1.UpdateRequest{Id: id, Name: proto.String("Renamed")}, &userv1.UpdateResponse{}
	case "Update email":
		return "Update", &userv1.UpdateRequest{Id: id, Email: proto.String(w.email()), CurrentPassword: proto.String(pw)}, &userv1.UpdateResponse{}
	case "Update password":
		// The same password again, so later cells still sign in with it.
		return "Update", &userv1.UpdateRequest{Id: id, Password: proto.String(pw), CurrentPassword: proto.String(pw)}, &userv1.UpdateResponse{}
	case "Update role":
		return "Update", &userv1.UpdateRequest{Id: id, Role: &flip}, &userv1.UpdateResponse{}
	case "Update status":
		return "Update", &userv1.UpdateRequest{Id: id, Status: userv1.Status_STATUS_DISABLED.Enum()}, &userv1.UpdateResponse{}
	case "Delete":
		return op, &userv1.DeleteRequest{Id: id}, &userv1.DeleteResponse{}
	case "ListSessions":
		return op, &userv1.ListSessionsRequest{Id: id}, &userv1.ListSessionsResponse{}
	case "EndSessions":
		return op, &userv1.EndSessionsRequest{Id: id}, &userv1.EndSessionsResponse{}
	case "CreatePasswordReset":
		return op, &userv1.CreatePasswordResetRequest{Email: email}, &userv1.CreatePasswordResetResponse{}
	case "ResendVerification":
		return op, &userv1.ResendVerificationRequest{Email: email}, &userv1.ResendVerificationResponse{}
	case "Keys":
		return op, &userv1.KeysRequest{}, &userv1.KeysResponse{}
	case "Revocations":
		return op, &userv1.RevocationsRequest{}, &userv1.RevocationsResponse{}
	case "ResetPassword":
		return op, &userv1.ResetPasswordRequest{Token: "never-issued-reset-token", Password: pw}, &userv1.ResetPasswordResponse{}
	case "VerifyEmail":
		return op, &userv1.VerifyEmailRequest{Token: "never-issued-verification-token"}, &userv1.VerifyEmailResponse{}
	case "EnrolTOTP":
		return op, &userv1.EnrolTOTPRequest{Id: id, Name: "phone"}, &userv1.EnrolTOTPResponse{}
	case "ListFactors":
		return op, &userv1.ListFactorsRequest{Id: id}, &userv1.ListFactorsResponse{}
	case "ConfirmTOTP", "RegenerateRecoveryCodes", "RemoveFactor", "RemoveFactors":
		return w.factorRequest(op, id, target)
	case "BeginPasskey":
		return op, &userv1.BeginPasskeyRequest{Id: id, Name: "key"}, &userv1.BeginPasskeyResponse{}
	case "FinishPasskey":
		return w.passkeyRequest(id, target)
	case "BeginPasswordless":
		return op, &userv1.BeginPasswordlessRequest{}, &userv1.BeginPasswordlessResponse{}
	case "CompletePasswordless":
		return op, &userv1.CompletePasswordlessRequest{Ceremony: "never-begun-ceremony", Credential: []byte("{}")}, &userv1.AuthResponse{}
	}
	return w.tokenRequest(op, target)
}

// factorRequest builds the rows that need a factor of the target's:
// enrolled (and for RegenerateRecoveryCodes confirmed) in-process as its
// owner, and removed when the cell ends, so the target's later cells still
// sign in with the password alone. The removal rows remove an unconfirmed
// one: the caller's password-only sign-in then meets step-up, and the
// cell tests who may, not how recently they signed in.
func (w *matrixWorld) factorRequest(op, id string, target *user.User) (string, proto.Message, proto.Message) {
	w.t.Helper()
	factorID, code := uuid.NewString(), "000000"
	if target != nil {
		ctx, owner := w.t.Context(), user.Actor{ID: target.ID, Role: target.Role}
		e, err := w.st.Service.EnrolTOTP(ctx, owner, target.ID, "phone")
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(func() { w.removeFactors(target.ID) })
		factorID, code = e.FactorID, totpCode(w.t, e.Secret)
		if op == "RegenerateRecoveryCodes" {
			if _, err := w.st.Service.ConfirmTOTP(ctx, owner, target.ID, e.FactorID, code); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	switch op {
	case "ConfirmTOTP":
		return op, &userv1.ConfirmTOTPRequest{Id: id, FactorId: factorID, Code: code}, &userv1.ConfirmTOTPResponse{}
	case "RemoveFactor":
		return op, &userv1.RemoveFactorRequest{Id: id, FactorId: factorID}, &userv1.RemoveFactorResponse{}
	case "RemoveFactors":
		return op, &userv1.RemoveFactorsRequest{Id: id}, &userv1.RemoveFactorsResponse{}
	}
	return op, &userv1.RegenerateRecoveryCodesRequest{Id: id}, &userv1.RegenerateRecoveryCodesResponse{}
}

// passkeyRequest builds a FinishPasskey of the target's: a registration
// begun in-process as its owner and answered by a software authenticator,
// removed when the cell ends.
func (w *matrixWorld) passkeyRequest(id string, target *user.User) (string, proto.Message, proto.Message) {
	w.t.Helper()
	in := &userv1.FinishPasskeyRequest{Id: id, FactorId: uuid.NewString(), Credential: []byte("{}")}
	if target != nil {
		owner := user.Actor{ID: target.ID, Role: target.Role}
		reg, err := w.st.Service.BeginPasskey(w.t.Context(), owner, target.ID, "key")
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(func() { w.removeFactors(target.ID) })
		if in.Credential, err = webauthntest.New(stack.PublicURL).Register(reg.Options); err != nil {
			w.t.Fatal(err)
		}
		in.FactorId = reg.FactorID
	}
	return "FinishPasskey", in, &userv1.FinishPasskeyResponse{}
}

func totpCode(t *testing.T, secret string) string {
	t.Helper()
	c, err := factor.TOTPCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// removeFactors deletes every factor of the user, from the store.
func (w *matrixWorld) removeFactors(userID string) {
	ctx := context.Background()
	list, err := w.st.Store.Factors(ctx, userID)
	if err != nil {
		w.t.Error(err)
	}
	for _, f := range list {
		if _, err := w.st.Store.DeleteFactor(ctx, userID, f.ID); err != nil {
			w.t.Error(err)
		}
	}
}

// tokenRequest builds the rows whose credential is in the message: the
// target's password or tokens.
func (w *matrixWorld) tokenRequest(op string, target *user.User) (string, proto.Message, proto.Message) {
	w.t.Helper()
	if target == nil {
		w.t.Fatalf("%s needs a user as its target", op)
	}
	if op == "Auth" {
		return op, &userv1.AuthRequest{Email: target.Email, Password: pw}, &userv1.AuthResponse{}
	}
	s := w.session(target)
	switch op {
	case "Refresh":
		return op, &userv1.RefreshRequest{RefreshToken: s.RefreshToken}, &userv1.AuthResponse{}
	case "Revoke":
		return op, &userv1.RevokeRequest{RefreshToken: s.RefreshToken, AccessToken: s.AccessToken}, &userv1.RevokeResponse{}
	case "Validate":
		return op, &userv1.ValidateRequest{AccessToken: s.AccessToken}, &userv1.ValidateResponse{}
	}
	w.t.Fatalf("the matrix has a row for %q, which this test cannot call", op)
	return "", nil, nil
}

// answer is the domain's answer to a call, in the matrix's words.
func (w *matrixWorld) answer(method, bearer string, in, out proto.Message) string {
	err := w.d.invoke(method, bearer, in, out)
	if err == nil {
		return "ok"
	}
	var body struct {
		ID string `json:"id"`
	}
	if json.Unmarshal([]byte(status.Convert(err).Message()), &body) != nil {
		return "transport error: " + err.Error()
	}
	words := map[string]string{"permission_denied": "denied", "unauthenticated": "unauthenticated",
		"not_found": "not found", "failed_precondition": "last admin", "invalid_argument": "invalid"}
	if w, ok := words[body.ID]; ok {
		return w
	}
	return body.ID
}

// TestAuthorizationMatrix makes every call of docs/design.md's
// authorization matrix over the gRPC port, each on a fresh target, and
// checks the answer; and it fails for any RPC of the contract that has no
// row, so a new RPC cannot ship without its rule.
func TestAuthorizationMatrix(t *testing.T) {
	cells := readMatrix(t)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName("user.v1.User")
	if err != nil {
		t.Fatal(err)
	}
	methods := d.(protoreflect.ServiceDescriptor).Methods()
	for i := range methods.Len() {
		name := string(methods.Get(i).Name())
		if !slices.ContainsFunc(cells, func(c matrixCell) bool { return strings.Fields(c.op)[0] == name }) {
			t.Errorf("RPC %s has no row in docs/design.md's authorization matrix", name)
		}
	}
	worlds := map[bool]*matrixWorld{false: newMatrixWorld(t, false), true: newMatrixWorld(t, true)}
	for _, c := range cells {
		t.Run(c.op+"/"+c.target+"/"+c.caller, func(t *testing.T) {
			w := worlds[c.target == "last admin"]
			w.t = t
			id, email, target := w.target(c.target)
			bearer := w.bearer(c.caller, target)
			method, in, out := w.request(c.op, id, email, target)
			if got := w.answer(method, bearer, in, out); got != c.want {
				t.Errorf("%s of %s by %s: %s, want %s", c.op, c.target, c.caller, got, c.want)
			}
		})
	}
}
