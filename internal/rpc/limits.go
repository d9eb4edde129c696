package rpc

import (
	"context"
	"net/netip"

	"google.golang.org/grpc/peer"

	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
)

// ClientLimits are the per-client budgets of the anonymous actions at the
// gRPC port: the limiters the JSON API and the page forms spend for the
// same action, under the same key (ratelimit.ClientKey), so a caller who
// comes straight to the port gets no more attempts than one who comes
// through the API.
type ClientLimits struct {
	// Limits holds one limiter per action; an action without one is
	// unlimited at the port.
	Limits map[ratelimit.Action]ratelimit.Limiter
	// Trusted are the peers that spend the budget of their own clients at
	// their own door before they call: the API instances
	// (USERSVC_TRUSTED_PROXIES of the service role). Their calls are not
	// limited again; they would otherwise put every client of an API
	// instance in one budget. Every other caller spends its own address's.
	Trusted []netip.Prefix
}

// allow spends one of the caller's attempts at action. A limiter that
// cannot decide lets the call through, as at the API: refusing every
// sign-in because Redis is down would be worse.
func (l ClientLimits) allow(ctx context.Context, action ratelimit.Action) error {
	lim := l.Limits[action]
	if lim == nil {
		return nil
	}
	addr, ok := peerAddr(ctx)
	if !ok {
		return nil
	}
	for _, p := range l.Trusted {
		if p.Contains(addr) {
			return nil
		}
	}
	allowed, retry, err := lim.Allow(ctx, ratelimit.ClientKey(action, addr.String()))
	if err != nil || allowed {
		return nil
	}
	return &user.Error{Code: user.CodeResourceExhausted, Message: "too many requests from this address; retry later",
		RetryAfter: retry}
}

// peerAddr is the address the call came from (go-micro puts gRPC's peer in
// the context).
func peerAddr(ctx context.Context) (netip.Addr, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
