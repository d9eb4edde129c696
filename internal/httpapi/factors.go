package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/user"
)

// The second-factor endpoints: an account's owner enrols a TOTP app,
// confirms it with a code, lists their factors and replaces their recovery
// codes; the owner or an admin removes factors. Who may is the service's
// decision.

// codeMFARequired is the answer to a right password for an account with a
// second factor: 403 with the error body plus the ticket to complete the
// sign-in with (grant_type "mfa").
const codeMFARequired = "mfa_required"

// mfaRequiredJSON is the MFARequired schema: the Error body and the challenge.
type mfaRequiredJSON struct {
	Error     errorInfo `json:"error"`
	MFATicket string    `json:"mfa_ticket"`
	Factors   []string  `json:"factors"`
	ExpiresIn int64     `json:"expires_in"`
	// WebAuthn is the assertion options for the account's passkeys (with
	// factor "webauthn" only).
	WebAuthn json.RawMessage `json:"webauthn,omitempty"`
}

func mfaRequired(c *gin.Context, ch *user.MFAChallenge) {
	c.Header("Pragma", "no-cache")
	c.AbortWithStatusJSON(http.StatusForbidden, mfaRequiredJSON{
		Error:     errorInfo{Code: codeMFARequired, Message: "a second factor is required: POST /user/token with grant_type mfa, the mfa_ticket and a code (or a passkey's credential)"},
		MFATicket: ch.Ticket, Factors: ch.Factors, ExpiresIn: secondsUntil(ch.ExpiresAt), WebAuthn: ch.WebAuthn})
}

type enrolTOTPRequest struct {
	Name string `json:"name"`
}

type totpEnrolmentJSON struct {
	FactorID string `json:"factor_id"`
	Secret   string `json:"secret"`
	URI      string `json:"uri"`
	QRPNG    []byte `json:"qr_png"` // base64 in JSON
}

// enrolTOTP answers POST /user/:id/factors/totp.
func (s *server) enrolTOTP(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	in, ok := bindJSON[enrolTOTPRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	e, err := s.users.EnrolTOTP(ctx, id, in.Name)
	if err != nil {
		s.fail(c, "enrol totp", err)
		return
	}
	c.JSON(http.StatusCreated, totpEnrolmentJSON{FactorID: e.FactorID, Secret: e.Secret, URI: e.URI, QRPNG: e.QRPNG})
}

// confirmFactorRequest confirms a TOTP enrolment with a code, or finishes
// a passkey registration with the attestation response (the JSON object
// of navigator.credentials.create) as credential.
type confirmFactorRequest struct {
	Code       string          `json:"code"`
	Credential json.RawMessage `json:"credential"`
}

type recoveryCodesJSON struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// confirmFactor answers POST /user/:id/factors/:factor_id/confirmation.
func (s *server) confirmFactor(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	details := map[string]string{}
	factorID := textParam(c.Param("factor_id"), "factor_id", "must be a UUID", details)
	if len(details) > 0 {
		invalid(c, "invalid request", details)
		return
	}
	in, ok := bindJSON[confirmFactorRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	var (
		codes []string
		err   error
	)
	switch {
	case len(in.Credential) > 0 && in.Code != "":
		invalid(c, "invalid request", map[string]string{"code": "is not allowed with credential"})
		return
	case len(in.Credential) > 0:
		codes, err = s.users.FinishPasskey(ctx, id, factorID, in.Credential)
	default:
		codes, err = s.users.ConfirmTOTP(ctx, id, factorID, in.Code)
	}
	if err != nil {
		s.fail(c, "confirm factor", err)
		return
	}
	c.JSON(http.StatusOK, recoveryCodesJSON{RecoveryCodes: nonNil(codes)})
}

type passkeyRegistrationJSON struct {
	FactorID string          `json:"factor_id"`
	Options  json.RawMessage `json:"options"`
}

// beginPasskey answers POST /user/:id/factors/webauthn: the factor to
// confirm and the options for navigator.credentials.create.
func (s *server) beginPasskey(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	in, ok := bindJSON[enrolTOTPRequest](c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	r, err := s.users.BeginPasskey(ctx, id, in.Name)
	if err != nil {
		s.fail(c, "begin passkey", err)
		return
	}
	c.JSON(http.StatusCreated, passkeyRegistrationJSON{FactorID: r.FactorID, Options: r.Options})
}

type passwordlessJSON struct {
	Ceremony  string          `json:"ceremony"`
	ExpiresIn int64           `json:"expires_in"`
	Options   json.RawMessage `json:"options"`
}

// beginPasswordless answers POST /user/token/webauthn: a passwordless
// sign-in's ceremony and the options for navigator.credentials.get; the
// assertion then goes to POST /user/token with grant_type webauthn.
func (s *server) beginPasswordless(c *gin.Context) {
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	pc, err := s.users.BeginPasswordless(ctx)
	if err != nil {
		s.fail(c, "begin passwordless", err)
		return
	}
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, passwordlessJSON{Ceremony: pc.Ceremony, ExpiresIn: secondsUntil(pc.ExpiresAt), Options: pc.Options})
}

type factorJSON struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	Active     bool       `json:"active"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

type factorsJSON struct {
	Factors           []factorJSON `json:"factors"`
	RecoveryCodesLeft int          `json:"recovery_codes_left"`
}

// listFactors answers GET /user/:id/factors.
func (s *server) listFactors(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	list, left, err := s.users.Factors(ctx, id)
	if err != nil {
		s.fail(c, "list factors", err)
		return
	}
	out := factorsJSON{Factors: make([]factorJSON, len(list)), RecoveryCodesLeft: left}
	for i, f := range list {
		out.Factors[i] = factorJSON{ID: f.ID, Kind: f.Kind, Name: f.Name, Active: f.Active, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt}
	}
	c.JSON(http.StatusOK, out)
}

// regenerateRecoveryCodes answers POST /user/:id/recovery-codes.
func (s *server) regenerateRecoveryCodes(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	codes, err := s.users.RegenerateRecoveryCodes(ctx, id)
	if err != nil {
		s.fail(c, "regenerate recovery codes", err)
		return
	}
	c.JSON(http.StatusOK, recoveryCodesJSON{RecoveryCodes: nonNil(codes)})
}

// removeFactor answers DELETE /user/:id/factors/:factor_id.
func (s *server) removeFactor(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	details := map[string]string{}
	factorID := textParam(c.Param("factor_id"), "factor_id", "must be a UUID", details)
	if len(details) > 0 {
		invalid(c, "invalid request", details)
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.RemoveFactor(ctx, id, factorID); err != nil {
		s.fail(c, "remove factor", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// removeFactors answers DELETE /user/:id/factors.
func (s *server) removeFactors(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ctx, cancel := s.rpcContext(c)
	defer cancel()
	if err := s.users.RemoveFactors(ctx, id); err != nil {
		s.fail(c, "remove factors", err)
		return
	}
	c.Status(http.StatusNoContent)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
