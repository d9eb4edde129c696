package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
)

// Grant types of POST /user/token, named as in OAuth 2.0 (RFC 6749) so
// clients recognise them.
const (
	grantPassword     = "password"
	grantRefreshToken = "refresh_token"
)

type tokenRequest struct {
	GrantType    string `json:"grant_type"` // "" = password
	Email        string `json:"email"`
	Password     string `json:"password"`
	RefreshToken string `json:"refresh_token"`
}

// tokenJSON is the Token schema.
type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// issueToken signs in (email and password) or rotates a refresh token:
// POST /user/token. Fields of the other grant are refused rather than
// ignored, so a client bug cannot pass unnoticed.
func (s *server) issueToken(c *gin.Context) {
	in, ok := bindJSON[tokenRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	var (
		resp *userv1.AuthResponse
		err  error
	)
	switch in.GrantType {
	case "", grantPassword:
		if in.RefreshToken != "" {
			invalid(c, "invalid request", map[string]string{"refresh_token": "is not allowed with grant_type password"})
			return
		}
		resp, err = s.users.Auth(ctx, &userv1.AuthRequest{Email: in.Email, Password: in.Password})
		countLogin(err)
	case grantRefreshToken:
		details := map[string]string{}
		if in.RefreshToken == "" {
			details["refresh_token"] = "is required"
		}
		if in.Email != "" {
			details["email"] = "is not allowed with grant_type refresh_token"
		}
		if in.Password != "" {
			details["password"] = "is not allowed with grant_type refresh_token"
		}
		if len(details) > 0 {
			invalid(c, "invalid request", details)
			return
		}
		resp, err = s.users.Refresh(ctx, &userv1.RefreshRequest{RefreshToken: in.RefreshToken})
	default:
		invalid(c, "invalid request", map[string]string{"grant_type": "must be password or refresh_token"})
		return
	}
	if err != nil {
		s.fail(c, "token "+in.GrantType, err)
		return
	}
	// Tokens must not be stored by caches on the way (RFC 6749 section 5.1).
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, tokenJSON{AccessToken: resp.GetAccessToken(), TokenType: "Bearer",
		ExpiresIn: resp.GetExpiresIn(), RefreshToken: resp.GetRefreshToken()})
}

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
	access, _ := bearerToken(c.GetHeader("Authorization"))
	if _, err := s.users.Revoke(ctx, &userv1.RevokeRequest{RefreshToken: in.RefreshToken, AccessToken: access}); err != nil {
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
	if _, err := s.users.CreatePasswordReset(ctx, &userv1.CreatePasswordResetRequest{Email: in.Email}); err != nil {
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
	if _, err := s.users.ResetPassword(ctx, &userv1.ResetPasswordRequest{Token: in.Token, Password: in.Password}); err != nil {
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
	resp, err := s.users.Keys(ctx, &userv1.KeysRequest{})
	if err != nil {
		s.fail(c, "keys", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", []byte(resp.GetJwks()))
}
