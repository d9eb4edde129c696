// Package orders is a tiny order service of a go-micro system that uses
// usersvc through its SDK only: it verifies users' access tokens locally
// (auth.Verifier, fed revocations by sdk/revocations), demands a verified
// email to order and a role or a scope to see everyone's orders, and asks
// the user service for the customer's name as a service account
// (sdk/userclient). Orders are kept in memory: the example is about the
// SDK, not about orders.
package orders

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authgin"
	"github.com/usersvc/usersvc/sdk/userclient"
)

// Users is what the service asks the user service (userclient.Client).
type Users interface {
	Get(ctx context.Context, id string) (*userclient.User, error)
}

// Order is one order.
type Order struct {
	ID        int       `json:"id"`
	UserID    string    `json:"user_id"`
	Item      string    `json:"item"`
	CreatedAt time.Time `json:"created_at"`
}

// Server is the HTTP face of the service.
type Server struct {
	verifier *auth.Verifier
	users    Users
	ready    func() error

	mu     sync.Mutex
	orders []Order
}

// NewServer returns a server; ready reports what keeps it from serving
// (the revocation feed not live), for /readyz.
func NewServer(v *auth.Verifier, users Users, ready func() error) *Server {
	return &Server{verifier: v, users: users, ready: ready}
}

// Handler is the service's routes.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	r.GET("/readyz", func(c *gin.Context) {
		if err := s.ready(); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
			return
		}
		c.Status(http.StatusNoContent)
	})

	// Every route below needs a valid, unrevoked access token.
	api := r.Group("/", authgin.Middleware(s.verifier))
	api.GET("/orders", authgin.Require(auth.RequireUser()), s.mine)
	api.POST("/orders", authgin.Require(auth.RequireUser(), auth.RequireVerifiedEmail()), s.create)
	// Everyone's orders: an admin, or a service account granted users:read.
	api.GET("/orders/all", authgin.Require(auth.AnyOf(auth.RequireRole(auth.RoleAdmin), auth.RequireScope("users:read"))), s.all)
	return r
}

// mine lists the caller's orders with their name, which the user service
// tells this service's service account.
func (s *Server) mine(c *gin.Context) {
	p, _ := authgin.Principal(c)
	u, err := s.users.Get(c.Request.Context(), p.ID)
	if err != nil {
		c.JSON(http.StatusBadGateway, gin.H{"error": "user service: " + err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": gin.H{"id": u.ID, "name": u.Name}, "orders": s.filter(p.ID)})
}

func (s *Server) create(c *gin.Context) {
	p, _ := authgin.Principal(c)
	var in struct {
		Item string `json:"item" binding:"required,max=100"`
	}
	if err := c.ShouldBindJSON(&in); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "item is required (at most 100 characters)"})
		return
	}
	s.mu.Lock()
	o := Order{ID: len(s.orders) + 1, UserID: p.ID, Item: in.Item, CreatedAt: time.Now().UTC()}
	s.orders = append(s.orders, o)
	s.mu.Unlock()
	c.JSON(http.StatusCreated, o)
}

func (s *Server) all(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"orders": s.filter("")}) }

// filter returns the orders of userID, every order for "".
func (s *Server) filter(userID string) []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Order{}
	for _, o := range s.orders {
		if userID == "" || o.UserID == userID {
			out = append(out, o)
		}
	}
	return out
}
