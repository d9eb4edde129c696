package user

// ListInput selects a page: by Page/PageSize, or after Cursor.
type ListInput struct {
	Page     int
	PageSize int
	Cursor   string
	Query    string
	Role     Role
	Status   Status
}

// Page is one page of users.
type Page struct {
	Users []*User
	// Total counts every user matching the filters; -1 on cursor pages,
	// where counting would cost a scan of every match on each deep page.
	Total      int64
	Page       int
	PageSize   int
	NextCursor string
}

// MaxPage bounds offset pagination: deep offsets cost a scan of every
// skipped row, which is what the cursor is for.
const MaxPage = 10000

// MaxQueryLength bounds the search prefix.
const MaxQueryLength = 100
