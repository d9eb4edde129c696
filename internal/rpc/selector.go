package rpc

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/registry/cache"
	"go-micro.dev/v6/selector"
)

// healthSelector is go-micro's registry selector (cached, watched node
// list) with passive health checks: a node whose connection failed is
// skipped for a cooldown, and retries within one call move on to the next
// node instead of drawing at random again. Between an instance dying and
// the registry noticing (a lease expiry, up to the registration TTL), calls
// thus cost one refused connection at most, not a failure.
type healthSelector struct {
	selector.Selector
	cooldown time.Duration
	mu       sync.Mutex
	down     map[string]time.Time // node ID -> skip until
}

func init() {
	// go-micro's registry cache answers "not found" without asking the
	// registry for 5s after any lookup while its cache is empty, and a
	// lookup racing the cache fill hits that window too: a new instance
	// would stay invisible for up to 5s, and concurrent first calls fail.
	// 200ms keeps the protection against hammering a down registry.
	cache.DefaultMinimumRetryInterval = 200 * time.Millisecond
}

func newHealthSelector(reg registry.Registry, cooldown time.Duration) *healthSelector {
	h := &healthSelector{cooldown: cooldown, down: map[string]time.Time{}}
	h.Selector = selector.NewSelector(selector.Registry(reg), selector.SetStrategy(h.strategy))
	return h
}

// Select is the registry selector's, retried briefly when the service is
// not (yet) in the cache, which is what an instance that registered a
// moment ago looks like through go-micro's registry cache.
func (h *healthSelector) Select(service string, opts ...selector.SelectOption) (selector.Next, error) {
	next, err := h.Selector.Select(service, opts...)
	for wait := 25 * time.Millisecond; errors.Is(err, selector.ErrNotFound) && wait <= 200*time.Millisecond; wait *= 2 {
		time.Sleep(wait)
		next, err = h.Selector.Select(service, opts...)
	}
	return next, err
}

// strategy returns a Next that walks the nodes round-robin from a random
// start, skipping nodes in cooldown; when every node is cooling down it
// tries them anyway, so a stale mark cannot turn a recovered service away.
func (h *healthSelector) strategy(services []*registry.Service) selector.Next {
	var nodes []*registry.Node
	for _, s := range services {
		nodes = append(nodes, s.Nodes...)
	}
	i := 0
	if len(nodes) > 0 {
		i = rand.IntN(len(nodes))
	}
	return func() (*registry.Node, error) {
		if len(nodes) == 0 {
			return nil, selector.ErrNoneAvailable
		}
		for range nodes {
			n := nodes[i%len(nodes)]
			i++
			if !h.isDown(n.Id) {
				return n, nil
			}
		}
		n := nodes[i%len(nodes)]
		i++
		return n, nil
	}
}

func (h *healthSelector) isDown(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.down[id]
	if ok && time.Now().After(until) {
		delete(h.down, id)
		return false
	}
	return ok
}

// Mark records the outcome of a call to node: a transport failure puts it in
// cooldown; a success (or an answer from the service) clears it.
func (h *healthSelector) Mark(service string, node *registry.Node, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if unreachable(err) {
		h.down[node.Id] = time.Now().Add(h.cooldown)
	} else {
		delete(h.down, node.Id)
	}
	h.Selector.Mark(service, node, err)
}
