package user

import "time"

// Snapshot is the public view of a user at one moment: the fields every
// copy of a user outside the database shares. The event payload is a
// Snapshot, and the cache entry and the search document embed one, so a
// new profile field is declared here once instead of in each copy.
//
// The JSON names are a wire and storage format: events in an outbox or a
// queue and entries in Redis are read by other versions of the service, so
// a name must never change meaning. Add fields; do not rename them.
// Snapshot must not get a MarshalJSON method: the types that embed it rely
// on its fields being promoted into their own JSON object.
type Snapshot struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Snapshot returns u's public view. It is the one place that copies the
// shared fields out of a User, so adding one means one line here.
func (u *User) Snapshot() Snapshot {
	return Snapshot{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Status: u.Status,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// Apply copies s's fields onto u, for an edge that rebuilds a User from a
// snapshot plus the fields the snapshot leaves out (the cache entry).
func (s Snapshot) Apply(u *User) {
	u.ID, u.Email, u.Name, u.Role, u.Status = s.ID, s.Email, s.Name, s.Role, s.Status
	u.CreatedAt, u.UpdatedAt = s.CreatedAt, s.UpdatedAt
}
