package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MaxTokenSize is the largest input Parse looks at. Our tokens are ~400
// bytes; the limit exists because Parse base64- and JSON-decodes the header
// and payload before the signature can be checked, and that work should be
// bounded for unauthenticated input.
const MaxTokenSize = 4 << 10

// algEdDSA is the only JWS algorithm this package signs with or accepts.
const algEdDSA = "EdDSA"

var (
	// ErrInvalidToken is wrapped by every error Parse returns. Callers should
	// treat the token as absent (HTTP 401) and not reveal the detail to the
	// client; the wrapped message is for logs.
	ErrInvalidToken = errors.New("invalid token")

	// ErrExpired is returned (wrapped) by Parse for a token that is genuinely
	// ours and otherwise valid but past its expiry, so that callers can tell
	// the client to refresh rather than to log in again. It wraps
	// ErrInvalidToken, so errors.Is(err, ErrInvalidToken) holds as well.
	ErrExpired = fmt.Errorf("%w: token expired", ErrInvalidToken)
)

// Claims are the facts carried by an access token.
type Claims struct {
	Subject string // user ID ("sub")
	Role    string // "role"
	// SessionVersion ("sv") is the user's session version at issue time. The
	// user service bumps it on password reset (and similar events) and
	// rejects tokens carrying an older value, which revokes every outstanding
	// access token of that user without a token denylist.
	SessionVersion int64
	// ClientID ("client_id", RFC 9068) is set on a service account's token
	// (client credentials grant): the subject is then the account, not a
	// user, and Scope (space-separated, "scope") says what it may do.
	ClientID string
	Scope    string
	ID       string // "jti", a UUIDv7: unique, and time-ordered for logs
	// SessionID ("sid") names the sign-in the token belongs to (the refresh
	// family), so ending that session can deny every access token it
	// handed out. Optional: "" for a token of no session.
	SessionID string
	// EmailVerified ("email_verified", as in OpenID Connect) says whether
	// the user had proved their address when the token was issued; user
	// tokens always carry it, service-account tokens never.
	EmailVerified bool
	// SignIn is how and when the session's sign-in was authenticated
	// ("amr", "auth_time"); empty on a service account's token.
	SignIn
	IssuedAt  time.Time // "iat", UTC, whole seconds
	ExpiresAt time.Time // "exp", UTC, whole seconds
}

// SignIn says how a sign-in was authenticated, as OpenID Connect puts it:
// AMR ("amr") lists the methods, in RFC 8176's values ("pwd" the password,
// "otp" a one-time code, "hwk" a security key; "rcode" a recovery code is
// ours), and AuthTime ("auth_time") is when the last of them succeeded.
// Every token of a session carries its sign-in's, so a service can demand a
// factor or a recent sign-in without asking us.
type SignIn struct {
	AMR      []string
	AuthTime time.Time // UTC, whole seconds; zero = not given
}

// The amr values this service writes.
const (
	AMRPassword     = "pwd"
	AMROTP          = "otp"
	AMRHardwareKey  = "hwk"
	AMRRecoveryCode = "rcode"
	// AMRMFA is RFC 8176's "mfa", added whenever more than one method was used.
	AMRMFA = "mfa"
)

// Config configures a Manager.
type Config struct {
	Issuer   string        // "iss" written and required; must not be empty
	Audience string        // "aud" written and required; must not be empty
	TTL      time.Duration // access-token lifetime, e.g. 15m; must be positive
	// Leeway is the clock skew tolerated when checking exp, iat and nbf
	// against this host's clock, for tokens verified on a different machine
	// than the one that issued them (e.g. 30s in production). Zero is fine.
	Leeway time.Duration
	Now    func() time.Time // clock; nil means time.Now
}

// Manager issues and verifies access tokens with a Keyring.
type Manager struct {
	keys     *Keyring
	cfg      Config
	parser   *jwt.Parser
	verified *verifiedCache
}

// NewManager validates cfg and returns a Manager. Issuer and audience are
// mandatory because they are what stops a token minted for another service
// (or by another deployment sharing a key by mistake) from being accepted
// here.
func NewManager(keys *Keyring, cfg Config) (*Manager, error) {
	switch {
	case keys == nil:
		return nil, errors.New("token: nil keyring")
	case cfg.Issuer == "":
		return nil, errors.New("token: config: empty issuer")
	case cfg.Audience == "":
		return nil, errors.New("token: config: empty audience")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("token: config: TTL must be positive, got %v", cfg.TTL)
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("token: config: leeway must not be negative, got %v", cfg.Leeway)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{keys: keys, cfg: cfg, verified: newVerifiedCache(100_000)}
	// The parser holds no per-call state, so one instance serves all
	// goroutines.
	m.parser = jwt.NewParser(
		// Only EdDSA: without this an attacker picks the algorithm, e.g.
		// "none" or HS256 keyed with our (public) key.
		jwt.WithValidMethods([]string{algEdDSA}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		// Reject non-canonical base64 (set trailing bits), so that only the
		// exact string we issued verifies, not a variant of it.
		jwt.WithStrictDecoding(),
	)
	return m, nil
}

// TTL returns the access-token lifetime, e.g. for the "expires_in" field of a
// token response.
func (m *Manager) TTL() time.Duration { return m.cfg.TTL }

// issuedClaims is the payload Issue signs. It shadows the embedded
// RegisteredClaims.Audience (a list) with a plain string, because RFC 7519
// allows "aud" to be a single string and that is what most consumers expect;
// relying on jwt.MarshalSingleStringAsArray instead would mean flipping a
// process-wide global.
type issuedClaims struct {
	jwt.RegisteredClaims
	Audience string `json:"aud"`
	Role     string `json:"role,omitempty"`
	SV       int64  `json:"sv"`
	SID      string `json:"sid,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	// EmailVerified is a pointer so a user's token carries false too, and
	// a service account's token carries nothing.
	EmailVerified *bool            `json:"email_verified,omitempty"`
	AMR           []string         `json:"amr,omitempty"`
	AuthTime      *jwt.NumericDate `json:"auth_time,omitempty"`
}

// parsedClaims is the payload Parse decodes. "aud" may be a string or a list
// here (the standard allows both). SV is a pointer so that a missing "sv" is
// an error rather than silently 0, which could pass a session-version check.
type parsedClaims struct {
	jwt.RegisteredClaims
	Role     string           `json:"role"`
	SV       *int64           `json:"sv"`
	ClientID string           `json:"client_id"`
	Scope    string           `json:"scope"`
	SID      string           `json:"sid"`
	EV       bool             `json:"email_verified"`
	AMR      []string         `json:"amr"`
	AuthTime *jwt.NumericDate `json:"auth_time"`
}

// Issue signs a new access token for the user subject, of the session
// sessionID ("" for none), saying whether their email is verified and how
// the session's sign-in was authenticated. Times are truncated to whole
// seconds (the JWT NumericDate precision) so the returned Claims equal what
// Parse will return for the token.
func (m *Manager) Issue(ctx context.Context, subject, role string, sessionVersion int64, sessionID string, emailVerified bool, signIn SignIn) (token string, claims Claims, err error) {
	if !signIn.AuthTime.IsZero() {
		signIn.AuthTime = signIn.AuthTime.UTC().Truncate(time.Second)
	}
	return m.issue(ctx, Claims{Subject: subject, Role: role, SessionVersion: sessionVersion, SessionID: sessionID,
		EmailVerified: emailVerified, SignIn: signIn})
}

// IssueClient signs an access token for a service account (the OAuth 2.0
// client credentials grant): sub and client_id are the account, scope its
// granted scopes, and there is no role and no session version.
func (m *Manager) IssueClient(ctx context.Context, clientID, scope string) (token string, claims Claims, err error) {
	if clientID == "" {
		return "", Claims{}, errors.New("token: issue: empty client id")
	}
	return m.issue(ctx, Claims{Subject: clientID, ClientID: clientID, Scope: scope})
}

// issue fills in jti, iat and exp and signs c, inside a "token issue" span.
func (m *Manager) issue(ctx context.Context, claims Claims) (token string, _ Claims, err error) {
	_, span := startIssue(ctx, m.keys.signing.ID)
	defer func() { endIssue(span, err) }()
	if claims.Subject == "" {
		return "", Claims{}, errors.New("token: issue: empty subject")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: generate jti: %w", err)
	}
	iat := m.cfg.Now().UTC().Truncate(time.Second)
	claims.ID = id.String()
	claims.IssuedAt = iat
	claims.ExpiresAt = iat.Add(m.cfg.TTL).Truncate(time.Second)
	token, err = m.sign(claims)
	if err != nil {
		return "", Claims{}, err
	}
	return token, claims, nil
}

// sign serialises and signs c with the keyring's signing key.
func (m *Manager) sign(c Claims) (string, error) {
	claims := issuedClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.cfg.Issuer,
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			ID:        c.ID,
		},
		Audience: m.cfg.Audience,
		Role:     c.Role,
		SV:       c.SessionVersion,
		SID:      c.SessionID,
		ClientID: c.ClientID,
		Scope:    c.Scope,
	}
	if c.ClientID == "" {
		claims.EmailVerified = &c.EmailVerified
		claims.AMR = c.AMR
		if !c.AuthTime.IsZero() {
			claims.AuthTime = jwt.NewNumericDate(c.AuthTime)
		}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	// kid lets verifiers (us, or others via the JWKS) pick the right key
	// during rotation without trying them all.
	t.Header["kid"] = m.keys.signing.ID
	s, err := t.SignedString(m.keys.signing.Private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Parse verifies token and returns its claims.
//
// A token is accepted only if: it is at most MaxTokenSize bytes; its header
// says alg "EdDSA", has a kid present in the keyring and no "crit"; the
// signature verifies with that key; iss and aud match the Config; exp and iat
// are present, exp is not past and iat not in the future (both within
// Leeway), nbf if present has passed; sub, jti and sv are present.
//
// Every error wraps ErrInvalidToken; an expired but otherwise valid token
// gives an error wrapping ErrExpired. The wrapped detail is meant for logs.
func (m *Manager) Parse(token string) (Claims, error) {
	if len(token) > MaxTokenSize {
		return Claims{}, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrInvalidToken, len(token), MaxTokenSize)
	}
	if c, ok := m.verified.get(token, m.cfg.Now(), m.cfg.Leeway); ok {
		return c, nil
	}
	var pc parsedClaims
	if _, err := m.parser.ParseWithClaims(token, &pc, m.keyFor); err != nil {
		// An expired token reaching here has a valid signature; report it as
		// expired only if nothing else is wrong with it.
		if isOnlyExpired(err) {
			if reqErr := pc.checkRequired(); reqErr != nil {
				return Claims{}, fmt.Errorf("%w: %w, %w", ErrInvalidToken, err, reqErr)
			}
			return Claims{}, fmt.Errorf("%w: %w", ErrExpired, err)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := pc.checkRequired(); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := Claims{
		Subject:        pc.Subject,
		Role:           pc.Role,
		SessionVersion: *pc.SV,
		ClientID:       pc.ClientID,
		Scope:          pc.Scope,
		ID:             pc.ID,
		SessionID:      pc.SID,
		EmailVerified:  pc.EV,
		SignIn:         SignIn{AMR: pc.AMR},
		IssuedAt:       pc.IssuedAt.UTC(),
		ExpiresAt:      pc.ExpiresAt.UTC(),
	}
	if pc.AuthTime != nil {
		c.AuthTime = pc.AuthTime.UTC()
	}
	m.verified.put(token, c)
	return c, nil
}

// checkRequired checks the claims the library verifies only when present
// (iat) or not at all (sub, jti, sv). We always issue them and callers rely
// on them.
func (pc *parsedClaims) checkRequired() error {
	switch {
	case pc.IssuedAt == nil:
		return errors.New("missing iat")
	case pc.ExpiresAt == nil: // also enforced by WithExpirationRequired
		return errors.New("missing exp")
	case pc.Subject == "":
		return errors.New("missing sub")
	case pc.ID == "":
		return errors.New("missing jti")
	case pc.SV == nil:
		return errors.New("missing sv")
	}
	return nil
}

// keyFor is the jwt.Keyfunc: it picks the verification key by kid. It never
// uses key material from the token itself (jwk/jku/x5u headers are ignored).
func (m *Manager) keyFor(t *jwt.Token) (any, error) {
	// Already enforced by WithValidMethods; repeated so that this function is
	// safe on its own.
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	// RFC 7515 §4.1.11: a recipient that does not understand every
	// critical extension must reject the token. We understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New(`unsupported "crit" header`)
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("missing kid header")
	}
	pub, ok := m.keys.lookup(kid)
	if !ok {
		// Truncated: the kid is attacker-controlled and ends up in logs.
		return nil, fmt.Errorf("unknown kid %.64q", kid)
	}
	return pub, nil
}

// isOnlyExpired reports whether err is a claims-validation failure whose only
// cause is expiry. The library joins all failed claim checks into one error,
// and a token with, say, a wrong audience should not be reported as merely
// expired (the client would try to refresh in vain).
func isOnlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenMalformed,
		jwt.ErrTokenUnverifiable,
		jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenInvalidSubject,
		jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenNotValidYet,
		jwt.ErrTokenInvalidId,
		jwt.ErrInvalidType,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}
