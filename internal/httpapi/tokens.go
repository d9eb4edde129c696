package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/user"
)

// Grant types of POST /user/token, named as in OAuth 2.0 (RFC 6749) so
// clients recognise them.
const (
	grantPassword          = "password"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	// grantMFA completes a password sign-in that answered mfa_required.
	grantMFA = "mfa"
	// grantWebAuthn signs in with a passkey alone (passwordless): the
	// ceremony of POST /user/token/webauthn and the assertion.
	grantWebAuthn = "webauthn"
	// factorWebAuthn is grant mfa's factor whose answer is a credential.
	factorWebAuthn = "webauthn"
)

type tokenRequest struct {
	GrantType    string `json:"grant_type"` // "" = password
	Email        string `json:"email"`
	Password     string `json:"password"`
	RefreshToken string `json:"refresh_token"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	MFATicket    string `json:"mfa_ticket"`
	Factor       string `json:"factor"`
	Code         string `json:"code"`
	// Credential is a passkey's assertion response (the JSON object of
	// navigator.credentials.get), for factor "webauthn" and grant
	// "webauthn"; Ceremony is the handle of POST /user/token/webauthn.
	Credential json.RawMessage `json:"credential"`
	Ceremony   string          `json:"ceremony"`
}

// tokenJSON is the Token schema. A service account's token has a scope and
// no refresh token (RFC 6749 section 4.4.3).
type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// grantFields lists, per grant type, the fields it takes; any other field
// that is set is refused rather than ignored, so a client bug cannot pass
// unnoticed.
var grantFields = map[string][]string{
	grantPassword:          {"email", "password"},
	grantRefreshToken:      {"refresh_token"},
	grantClientCredentials: {"client_id", "client_secret"},
	grantMFA:               {"mfa_ticket", "factor", "code", "credential"},
	grantWebAuthn:          {"ceremony", "credential"},
}

// issueToken signs in (email and password, or a passkey), completes a
// sign-in with a second factor, rotates a refresh token, or signs a
// service account in (client credentials): POST /user/token.
func (s *server) issueToken(c *gin.Context) {
	in, ok := bindJSON[tokenRequest](c)
	if !ok {
		return
	}
	grant := in.GrantType
	if grant == "" {
		grant = grantPassword
	}
	if _, known := grantFields[grant]; !known {
		invalid(c, "invalid request", map[string]string{"grant_type": "must be password, refresh_token, client_credentials, mfa or webauthn"})
		return
	}
	if details := tokenRequestDetails(grant, in); len(details) > 0 {
		invalid(c, "invalid request", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	var (
		out tokenJSON
		err error
	)
	if grant == grantClientCredentials {
		var cs *user.ClientSession
		if cs, err = s.users.AuthClient(ctx, in.ClientID, in.ClientSecret); err == nil {
			out = tokenJSON{AccessToken: cs.AccessToken, ExpiresIn: secondsUntil(cs.AccessExpiresAt), Scope: cs.Scope}
		}
	} else {
		var sess *user.Session
		sess, err = s.userGrant(ctx, grant, in)
		if err == nil && sess.MFA != nil {
			mfaRequired(c, sess.MFA)
			return
		}
		if err == nil {
			out = tokenJSON{AccessToken: sess.AccessToken, ExpiresIn: secondsUntil(sess.AccessExpiresAt),
				RefreshToken: sess.RefreshToken}
		}
	}
	if err != nil {
		s.fail(c, "token "+grant, err)
		return
	}
	out.TokenType = "Bearer"
	// Tokens must not be stored by caches on the way (RFC 6749 section 5.1):
	// no-store as on every answer (noStore), and Pragma for HTTP/1.0 ones.
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, out)
}

// tokenRequestDetails checks the fields a grant takes: set fields it does
// not take, and required ones the RPC could not tell from absent ones (the
// password grant's are checked by the service).
func tokenRequestDetails(grant string, in tokenRequest) map[string]string {
	allowed := grantFields[grant]
	details := map[string]string{}
	for field, v := range map[string]string{"email": in.Email, "password": in.Password, "refresh_token": in.RefreshToken,
		"client_id": in.ClientID, "client_secret": in.ClientSecret, "mfa_ticket": in.MFATicket, "factor": in.Factor, "code": in.Code,
		"credential": string(in.Credential), "ceremony": in.Ceremony} {
		if v != "" && !slices.Contains(allowed, field) {
			details[field] = "is not allowed with grant_type " + grant
		}
	}
	passkey := grant == grantMFA && in.Factor == factorWebAuthn
	for field, missing := range map[string]bool{
		"refresh_token": grant == grantRefreshToken && in.RefreshToken == "",
		"client_id":     grant == grantClientCredentials && in.ClientID == "",
		"client_secret": grant == grantClientCredentials && in.ClientSecret == "",
		"credential":    (passkey || grant == grantWebAuthn) && len(in.Credential) == 0,
	} {
		if missing {
			details[field] = "is required"
		}
	}
	// A passkey answers with its assertion (an object), a typed factor
	// with a code (a string): each in its own field.
	if passkey && in.Code != "" {
		details["code"] = "is not allowed with factor webauthn (send the assertion as credential)"
	}
	if grant == grantMFA && !passkey && len(in.Credential) > 0 {
		details["credential"] = "is only allowed with factor webauthn"
	}
	return details
}

// userGrant runs a user's grant: the password, an MFA completion, a
// passwordless passkey sign-in, or a refresh.
func (s *server) userGrant(ctx context.Context, grant string, in tokenRequest) (*user.Session, error) {
	switch grant {
	case grantPassword:
		sess, err := s.users.Auth(ctx, in.Email, in.Password)
		countLogin(err)
		return sess, err
	case grantMFA:
		code := in.Code
		if in.Factor == factorWebAuthn {
			code = string(in.Credential)
		}
		return s.users.CompleteMFA(ctx, in.MFATicket, in.Factor, code)
	case grantWebAuthn:
		sess, err := s.users.CompletePasswordless(ctx, in.Ceremony, in.Credential)
		countLogin(err)
		return sess, err
	default:
		return s.users.Refresh(ctx, in.RefreshToken)
	}
}

// secondsUntil is a token response's expires_in.
func secondsUntil(t time.Time) int64 { return int64(time.Until(t).Round(time.Second).Seconds()) }

type revokeRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// revokeToken logs out: DELETE /user/token ends the refresh token's family
// and, when the request carries its bearer token, revokes that access token
// at once on every instance. Possession of the refresh token is the
// authorisation, so no bearer token is needed (the access token may already
// have expired). An unknown token is 204 too: the session the caller wants
// ended does not exist.
func (s *server) revokeToken(c *gin.Context) {
	in, ok := bindJSON[revokeRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	access, _ := reqmeta.BearerToken(c.GetHeader("Authorization"))
	if err := s.users.Revoke(ctx, in.RefreshToken, access); err != nil {
		s.fail(c, "revoke", err)
		return
	}
	c.Status(http.StatusNoContent)
}

type passwordResetRequest struct {
	Email string `json:"email"`
}

// requestPasswordReset mails a reset link: POST /user/password → 202 whether
// or not the email is registered, so the endpoint cannot enumerate users.
// A malformed email is still 400: that reveals nothing about anyone.
func (s *server) requestPasswordReset(c *gin.Context) {
	in, ok := bindJSON[passwordResetRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.CreatePasswordReset(ctx, in.Email); err != nil {
		s.fail(c, "create password reset", err)
		return
	}
	c.Status(http.StatusAccepted)
}

type resetPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// resetPassword consumes a reset token: PUT /user/password → 204. The
// service ends every session of the user.
func (s *server) resetPassword(c *gin.Context) {
	in, ok := bindJSON[resetPasswordRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.ResetPassword(ctx, in.Token, in.Password); err != nil {
		s.fail(c, "reset password", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// jwks serves the public signing keys so other services can verify access
// tokens offline. Five minutes of caching bounds the load on the service
// while a newly added key still reaches verifiers quickly.
func (s *server) jwks(c *gin.Context) {
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	jwks, err := s.users.Keys(ctx)
	if err != nil {
		s.fail(c, "keys", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", jwks)
}
