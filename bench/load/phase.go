package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// userPassword is every load user's password: long and uncommon enough for
// the password policy (zxcvbn score ≥ 2, not derived from the email).
const userPassword = "amber kettle wanders north 4721"

// loadUser is a user the run registered.
type loadUser struct {
	id, email string
	token     atomic.Pointer[string] // latest access token, nil before a login
}

// driver holds the client and the state phases hand on to each other.
type driver struct {
	o     *options
	t     *target
	hc    *http.Client
	runID string
	users []*loadUser // registered so far
	// pending are the register phase's slots, request n's user in slot n
	// (nil when it failed); collectUsers moves them into users.
	pending []*loadUser
	authed  []*loadUser // users with an access token, for the read phases
	admin   string      // admin access token, "" until needed
}

func newDriver(o *options, t *target) *driver {
	tr := &http.Transport{
		MaxIdleConns:        2 * o.concurrency,
		MaxIdleConnsPerHost: o.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &driver{o: o, t: t, runID: strconv.FormatInt(time.Now().UnixNano(), 36),
		hc: &http.Client{Transport: tr, Timeout: o.timeout,
			// No redirects on this API; never follow one anywhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// request sends one request and returns the status and, when keep, the
// body (otherwise it is drained for the connection's reuse).
func (d *driver) request(ctx context.Context, method, path, token string, body []byte, keep bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.t.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := d.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	if keep || res.StatusCode >= 300 {
		b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil, err
}

// outcome is the result of one request of a phase.
type outcome struct {
	status int    // 0 = no HTTP response
	detail string // why, for a failed request
}

// phaseSpec is what a phase sends: do performs request number n (0, 1, …)
// and wants status expect.
type phaseSpec struct {
	name   string
	expect int
	warmup bool // run unrecorded for -warmup first
	do     func(ctx context.Context, n int) outcome
}

// phaseResult is what one phase measured.
type phaseResult struct {
	Name        string         `json:"phase"`
	Route       string         `json:"route"`
	Expect      int            `json:"expected_status"`
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"` // by status ("transport" = no response)
	ErrorSample string         `json:"error_sample,omitempty"`
	Elapsed     time.Duration  `json:"elapsed_ns"`
	RPS         float64        `json:"req_per_s"`
	P50         time.Duration  `json:"p50_ns"`
	P90         time.Duration  `json:"p90_ns"`
	P99         time.Duration  `json:"p99_ns"`
	Max         time.Duration  `json:"max_ns"`
	CPU         *cpuUse        `json:"cpu,omitempty"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

// runPhase prepares and runs the named phase.
func (d *driver) runPhase(ctx context.Context, name string) (*phaseResult, error) {
	var spec phaseSpec
	var route string
	switch name {
	case "register":
		route = "POST /user"
		spec = d.registerSpec()
	case "login":
		route = "POST /user/token"
		if err := d.ensureUsers(ctx); err != nil {
			return nil, err
		}
		spec = d.loginSpec()
	case "get":
		route = "GET /user/:id (own token)"
		if err := d.ensureTokens(ctx); err != nil {
			return nil, err
		}
		spec = d.getSpec()
	case "list":
		route = "GET /user?page_size=20 (admin)"
		if err := d.ensureAdmin(ctx); err != nil {
			return nil, err
		}
		spec = d.listSpec()
	default:
		return nil, fmt.Errorf("unknown phase %q", name)
	}
	r := d.measure(ctx, spec)
	r.Route = route
	if name == "login" {
		d.collectTokens()
	}
	return r, nil
}

// measure runs spec with -concurrency workers until -duration has passed,
// -max-requests were sent, or ctx ends. Every latency goes into a slice
// preallocated for the cap; request n writes slot n, so no locking.
func (d *driver) measure(ctx context.Context, spec phaseSpec) *phaseResult {
	if spec.warmup && d.o.warmup > 0 {
		d.warmup(ctx, spec)
	}

	limit := int64(d.o.maxRequests)
	lat := make([]time.Duration, limit)
	var next atomic.Int64
	type tally struct {
		byStatus map[int]int
		sample   string
	}
	tallies := make([]tally, d.o.concurrency)
	before := sampleCPU(d.t.procs)
	start := time.Now()
	deadline := start.Add(d.o.duration)
	var wg sync.WaitGroup
	for w := range d.o.concurrency {
		tl := &tallies[w]
		tl.byStatus = map[int]int{}
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := next.Add(1) - 1
				if n >= limit {
					return
				}
				t0 := time.Now()
				out := spec.do(ctx, int(n))
				lat[n] = time.Since(t0)
				if out.status == 0 && ctx.Err() != nil {
					lat[n] = -1 // cut short by the interrupt: not a result
					continue
				}
				tl.byStatus[out.status]++
				if out.status != spec.expect && tl.sample == "" {
					tl.sample = out.detail
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := sampleCPU(d.t.procs)

	count := min(next.Load(), limit)
	r := &phaseResult{Name: spec.name, Expect: spec.expect, Requests: int(count), Elapsed: elapsed,
		Errors: map[string]int{}, Interrupted: ctx.Err() != nil}
	for _, tl := range tallies {
		for st, k := range tl.byStatus {
			switch st {
			case spec.expect:
				r.OK += k
			case 0:
				r.Errors["transport"] += k
			default:
				r.Errors[strconv.Itoa(st)] += k
			}
		}
		if r.ErrorSample == "" {
			r.ErrorSample = tl.sample
		}
	}
	l := slices.DeleteFunc(lat[:count], func(d time.Duration) bool { return d < 0 })
	r.Requests = len(l)
	if len(l) > 0 {
		r.RPS = float64(len(l)) / elapsed.Seconds()
		slices.Sort(l)
		r.P50, r.P90, r.P99, r.Max = percentile(l, 50), percentile(l, 90), percentile(l, 99), l[len(l)-1]
	}
	if u, ok := after.since(before, d.t.procs); ok {
		r.CPU = &u
	}
	return r
}

// warmup runs spec unmeasured for -warmup (at most -max-requests), so the
// measured phase starts on warm caches and connections.
func (d *driver) warmup(ctx context.Context, spec phaseSpec) {
	var n atomic.Int64
	deadline := time.Now().Add(d.o.warmup)
	var wg sync.WaitGroup
	for range d.o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := n.Add(1) - 1
				if i >= int64(d.o.maxRequests) {
					return
				}
				spec.do(ctx, int(i))
			}
		})
	}
	wg.Wait()
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based rank
	return sorted[max(i, 1)-1]
}

// fail describes a request that did not get the expected status.
func fail(status int, body []byte, err error) outcome {
	if err != nil {
		return outcome{status: status, detail: err.Error()}
	}
	const maxDetail = 300
	if len(body) > maxDetail {
		body = body[:maxDetail]
	}
	return outcome{status: status, detail: fmt.Sprintf("%d %s", status, body)}
}

// registerSpec creates users with unique emails; request n is user n.
func (d *driver) registerSpec() phaseSpec {
	made := make([]*loadUser, d.o.maxRequests)
	d.users = nil
	spec := phaseSpec{name: "register", expect: http.StatusCreated}
	spec.do = func(ctx context.Context, n int) outcome {
		u, out := d.register(ctx, n)
		if u != nil {
			made[n] = u
		}
		return out
	}
	// Collected after the phase: see ensureUsers.
	d.pending = made
	return spec
}

// register creates user number n of this run.
func (d *driver) register(ctx context.Context, n int) (*loadUser, outcome) {
	email := fmt.Sprintf("load-%s-%d@example.com", d.runID, n)
	body, _ := json.Marshal(map[string]string{"email": email, "password": userPassword, "name": "Load " + strconv.Itoa(n)})
	st, b, err := d.request(ctx, http.MethodPost, "/user", "", body, true)
	if err != nil || st != http.StatusCreated {
		return nil, fail(st, b, err)
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &u); err != nil || u.ID == "" {
		return nil, fail(0, b, fmt.Errorf("201 without a user id: %.200s", b))
	}
	return &loadUser{id: u.ID, email: email}, outcome{status: st}
}

// loginSpec signs the users in, round-robin.
func (d *driver) loginSpec() phaseSpec {
	users := d.users
	return phaseSpec{name: "login", expect: http.StatusOK, do: func(ctx context.Context, n int) outcome {
		return d.login(ctx, users[n%len(users)])
	}}
}

// login signs u in and keeps the access token.
func (d *driver) login(ctx context.Context, u *loadUser) outcome {
	tok, out := d.token(ctx, u.email, userPassword)
	if tok != "" {
		u.token.Store(&tok)
	}
	return out
}

// token signs in with a password and returns the access token.
func (d *driver) token(ctx context.Context, email, pw string) (string, outcome) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	st, b, err := d.request(ctx, http.MethodPost, "/user/token", "", body, true)
	if err != nil || st != http.StatusOK {
		return "", fail(st, b, err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return "", fail(0, b, fmt.Errorf("200 without an access token: %.200s", b))
	}
	return t.AccessToken, outcome{status: st}
}

// getSpec reads each user with their own token: Validate + Get.
func (d *driver) getSpec() phaseSpec {
	users := d.authed
	return phaseSpec{name: "get", expect: http.StatusOK, warmup: true, do: func(ctx context.Context, n int) outcome {
		u := users[n%len(users)]
		st, b, err := d.request(ctx, http.MethodGet, "/user/"+u.id, *u.token.Load(), nil, false)
		if err != nil || st != http.StatusOK {
			return fail(st, b, err)
		}
		return outcome{status: st}
	}}
}

// listSpec lists the first page of 20 as an admin: one Pagination RPC (with
// its COUNT).
func (d *driver) listSpec() phaseSpec {
	return phaseSpec{name: "list", expect: http.StatusOK, warmup: true, do: func(ctx context.Context, n int) outcome {
		st, b, err := d.request(ctx, http.MethodGet, "/user?page_size=20", d.admin, nil, false)
		if err != nil || st != http.StatusOK {
			return fail(st, b, err)
		}
		return outcome{status: st}
	}}
}

// minUsers is how many users the read phases spread over when the
// register phase did not run (or made fewer): at least one per worker, up
// to 32.
func (d *driver) minUsers() int { return min(d.o.concurrency, 32) }

// ensureUsers collects the users the register phase made and registers
// more, one by one, when there are fewer than minUsers.
func (d *driver) ensureUsers(ctx context.Context) error {
	d.collectUsers()
	for n := len(d.users); len(d.users) < d.minUsers(); n++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Numbers past the register phase's cap never collide with its.
		u, out := d.register(ctx, d.o.maxRequests+n)
		if u == nil {
			return fmt.Errorf("register a user: %s", out.detail)
		}
		d.users = append(d.users, u)
	}
	return nil
}

// collectUsers moves the register phase's users into d.users.
func (d *driver) collectUsers() {
	for _, u := range d.pending {
		if u != nil {
			d.users = append(d.users, u)
		}
	}
	d.pending = nil
}

// collectTokens lists the users that hold an access token.
func (d *driver) collectTokens() {
	d.authed = d.authed[:0]
	for _, u := range d.users {
		if u.token.Load() != nil {
			d.authed = append(d.authed, u)
		}
	}
}

// ensureTokens makes sure at least minUsers users (or all, if fewer) hold
// an access token, signing in those that lack one.
func (d *driver) ensureTokens(ctx context.Context) error {
	if err := d.ensureUsers(ctx); err != nil {
		return err
	}
	d.collectTokens()
	want := min(d.minUsers(), len(d.users))
	for _, u := range d.users {
		if len(d.authed) >= want {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if u.token.Load() != nil {
			continue
		}
		if out := d.login(ctx, u); out.status != http.StatusOK {
			return fmt.Errorf("sign in %s: %s", u.email, out.detail)
		}
		d.authed = append(d.authed, u)
	}
	if len(d.authed) == 0 {
		return errors.New("no user holds an access token")
	}
	return nil
}

// ensureAdmin creates an administrator (`usersvc admin create`) and signs
// in, once.
func (d *driver) ensureAdmin(ctx context.Context) error {
	if d.admin != "" {
		return nil
	}
	email := "load-admin-" + d.runID + "@example.com"
	const pw = "an admin passphrase of some length"
	d.t.admin(email, pw)
	tok, out := d.token(ctx, email, pw)
	if tok == "" {
		return fmt.Errorf("admin sign-in: %s", out.detail)
	}
	d.admin = tok
	return nil
}
