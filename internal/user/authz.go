package user

// The authorization rule: who may do what to which account. Every use case
// that acts on an account asks here and nowhere else; the API and the pages
// only pass the caller's credential on. docs/design.md ("Who may act on
// whom") has the whole table, and internal/rpc's authz_test.go checks every
// cell of it over the gRPC port.
//
// A credential reaches a set of accounts, per kind of operation:
//
//   - reachSelf: the caller's own account (a plain user).
//   - reachPlain: every plain user's account (a service account with
//     users:write). Never an admin's: a scope below users:admin must not
//     let its holder become, or act as, anyone more privileged than the
//     scope, and an admin's email, password or sessions are exactly the
//     way to become one.
//   - reachAll: every account (an admin user, a service account with
//     users:admin, the in-process System actor).
//
// Reach grows with the target's role, never shrinks, so a caller who may
// not act on a plain user with some ID may act on no account with it: that
// is decided before the account is read (allowedBeforeRead), and the answer
// is then the same whether it exists or not.

// Op is a kind of operation on an account, as the rule tells them apart.
type Op int

const (
	// OpRead is reading one account (Get).
	OpRead Op = iota
	// OpList is listing and searching accounts (Pagination).
	OpList
	// OpCreateAdmin is creating an account with the admin role. Creating a
	// plain account is sign-up and needs no rule, except that a
	// read-only service account may not (see mayCreate).
	OpCreateAdmin
	// OpProfile is changing an account's name.
	OpProfile
	// OpCredentials is changing an account's email or password, which
	// is taking it over: whoever controls both can sign in as it.
	OpCredentials
	// OpRoleStatus is changing an account's role or status.
	OpRoleStatus
	// OpDelete is deleting an account.
	OpDelete
	// OpSessions is listing or ending an account's sessions.
	OpSessions
	// OpRevocations is reading the token revocations other services apply
	// (no target): user IDs and why their tokens ended, for machines that
	// verify tokens, not for users.
	OpRevocations
	// OpFactors is enrolling, confirming and listing an account's second
	// factors and making its recovery codes: its owner's alone. Not even
	// an admin enrols a factor for someone else, since whoever holds the
	// factor can then sign in as them.
	OpFactors
	// OpRemoveFactors is removing an account's second factors (and with
	// the last one its recovery codes): its owner, or a caller who
	// reaches every account (an admin, a users:admin service account, the
	// CLI), for a user who lost theirs. Not a users:write account: a
	// factor is what stands between a known password and the account.
	OpRemoveFactors
	// OpCreate is creating an account for someone else (an admin or a
	// service account): who may is MayCreate's and OpCreateAdmin's
	// question; the op exists for step-up (NeedsStepUp).
	OpCreate
)

// refusal is what the rule answers for each operation it refuses.
var refusal = map[Op]string{
	OpRead:          "you may not read this user",
	OpList:          "only an admin or a service account may list users",
	OpCreateAdmin:   "only an admin may create an admin",
	OpProfile:       "you may not change this user",
	OpCredentials:   "you may not change this user's email or password",
	OpRoleStatus:    "only an admin may change role or status, and not their own",
	OpDelete:        "you may not delete this user",
	OpSessions:      "you may not list or end this user's sessions",
	OpRevocations:   "only a service account or an admin may read the token revocations",
	OpFactors:       "only the account's owner may manage its second factors",
	OpRemoveFactors: "only the account's owner or an admin may remove its second factors",
	OpCreate:        "you may not create users",
}

type reach int

const (
	reachNone reach = iota
	reachSelf
	reachPlain
	reachAll
)

// reach is how far the actor's credential reaches for op.
func (a Actor) reach(op Op) reach {
	switch {
	case a.System, !a.ServiceAccount && a.Role == RoleAdmin, a.hasScope(ScopeAdmin):
		return reachAll
	case a.ServiceAccount && op == OpRevocations:
		return reachAll
	case a.ServiceAccount && (op == OpRead || op == OpList):
		if a.hasScope(ScopeRead) || a.hasScope(ScopeWrite) {
			return reachAll
		}
	case a.ServiceAccount && a.hasScope(ScopeWrite):
		if op == OpProfile || op == OpCredentials || op == OpDelete || op == OpSessions {
			return reachPlain
		}
	case !a.ServiceAccount && a.ID != "":
		if op != OpList && op != OpRoleStatus && op != OpCreateAdmin && op != OpRevocations {
			return reachSelf
		}
	}
	return reachNone
}

// allowed decides whether a may do op to the account with id, whose role is
// role; OpList and OpCreateAdmin have no target (id and role are ignored).
func (a Actor) allowed(op Op, id string, role Role) bool {
	self := !a.System && !a.ServiceAccount && a.ID != "" && a.ID == id
	if op == OpRoleStatus && self {
		// Nobody changes their own role or status: an admin would lock
		// themself out, and a user would promote themself.
		return false
	}
	if op == OpFactors {
		return self
	}
	switch a.reach(op) {
	case reachAll:
		return true
	case reachPlain:
		return role == RoleUser
	case reachSelf:
		return self
	}
	return false
}

// Authorize returns nil if a may do op to the account with id and role, or
// the operation's permission_denied error.
func (a Actor) Authorize(op Op, id string, role Role) error {
	if a.allowed(op, id, role) {
		return nil
	}
	return Forbidden(refusal[op])
}

// AuthorizeBeforeRead is Authorize before the account is read: it refuses
// only what the caller may do to no account with id, whatever its role, so
// a refusal here tells nothing about whether the account exists.
func (a Actor) AuthorizeBeforeRead(op Op, id string) error {
	return a.Authorize(op, id, RoleUser)
}

// MayCreate decides who may register a plain account: anybody, signed in
// or not, except a read-only service account, whose scope is reading.
func (a Actor) MayCreate() error {
	if a.ServiceAccount && !a.hasScope(ScopeWrite) && !a.hasScope(ScopeAdmin) {
		return Forbidden("a users:read service account may not create users")
	}
	return nil
}

// CreatesForOthers reports whether a creates accounts on someone else's
// behalf (an admin, a service account with users:write or users:admin, the
// System actor): they may learn that an address is taken, where a sign-up,
// anonymous or by a signed-in plain user, must not (SignupEnumerationSafe).
func (a Actor) CreatesForOthers() bool {
	return a.reach(OpRead) == reachAll && (!a.ServiceAccount || a.hasScope(ScopeWrite) || a.hasScope(ScopeAdmin))
}

// SignsUp reports whether a Create by a is a sign-up: anonymous, or a
// signed-in plain user. A sign-up spends the per-client sign-up budget at
// every door and never tells whether the address was taken.
func (a Actor) SignsUp() bool { return !a.CreatesForOthers() }

// UpdateOps are the operations an update request asks for; an empty one
// is a profile change that changes nothing, and still needs the right to
// make one, since it answers with the account.
func UpdateOps(in UpdateInput) []Op {
	ops := []Op{OpProfile}
	if in.Email != nil || in.Password != nil {
		ops = append(ops, OpCredentials)
	}
	if in.Role != nil || in.Status != nil {
		ops = append(ops, OpRoleStatus)
	}
	return ops
}

// AuthorizeAll is Authorize for every op of ops.
func (a Actor) AuthorizeAll(ops []Op, id string, role Role) error {
	for _, op := range ops {
		if err := a.Authorize(op, id, role); err != nil {
			return err
		}
	}
	return nil
}
