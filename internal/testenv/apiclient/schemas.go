package apiclient

// The API's response schemas (api/openapi.yaml), for tests to decode into.
// Each exchange is validated against the document itself; these only name
// the fields the tests read.

// User is the User schema.
type User struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	Status        string `json:"status"`
	EmailVerified bool   `json:"email_verified"`
	PendingEmail  string `json:"pending_email"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

// UserList is the UserList schema.
type UserList struct {
	Users      []User `json:"users"`
	Total      int64  `json:"total"`
	Page       int32  `json:"page"`
	PageSize   int32  `json:"page_size"`
	NextCursor string `json:"next_cursor"`
}

// Token is the Token schema.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}
