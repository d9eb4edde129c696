package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

type resendVerificationRequest struct {
	Email string `json:"email"`
}

// resendVerification mails a new verification link: POST
// /user/verification → 202 whether or not the address is registered or
// already verified, so the endpoint cannot enumerate users.
func (s *server) resendVerification(c *gin.Context) {
	in, ok := bindJSON[resendVerificationRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.ResendVerification(ctx, in.Email); err != nil {
		s.fail(c, "resend verification", err)
		return
	}
	c.Status(http.StatusAccepted)
}

type verifyEmailRequest struct {
	Token string `json:"token"`
}

// verifyEmail consumes a verification token: PUT /user/verification → 204.
func (s *server) verifyEmail(c *gin.Context) {
	in, ok := bindJSON[verifyEmailRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.VerifyEmail(ctx, in.Token); err != nil {
		s.fail(c, "verify email", err)
		return
	}
	c.Status(http.StatusNoContent)
}
