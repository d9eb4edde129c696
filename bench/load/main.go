// Command load is the load generator of usersvc. It starts its own target —
// `usersvc dev` (one process, SQLite) or a distributed deployment (embedded
// etcd, a fresh MariaDB database, N services, N APIs, one gateway) — drives
// it over HTTP on loopback through a sequence of bounded phases, prints a
// Markdown table (and, with -json, JSON) and stops everything it started.
//
//	go run ./bench/load -mode=dev
//	go run ./bench/load -mode=distributed -services 1 -apis 1
//	go run ./bench/load -mode=distributed -env USERSVC_REDIS_URL=redis://127.0.0.1:6379/0
//
// Phases (each bounded by -duration and -max-requests, run by -concurrency
// workers sharing one keep-alive http.Client):
//
//	register  POST /user with unique emails                     (201)
//	login     POST /user/token, round-robin over those users    (200)
//	get       GET /user/:id with the user's own bearer token    (200; one Get RPC, which
//	          authenticates the token itself)
//	list      GET /user?page_size=20 as an admin                (200; one Pagination RPC)
//
// (The Validate RPC alone, which the API no longer calls, is measured by
// BenchmarkValidate in internal/rpc.)
//
// The target uses the production argon2id parameters (m=19 MiB, t=2, p=1)
// unless -cheap-hash, and rate limits raised out of the way. The login
// ceiling — cores ÷ the time of one argon2id hash with the production
// parameters, measured in this process before the target starts — is
// printed with the login phase's share of it, next to the hash rate all
// cores reach hashing at once (-ceiling-only measures just that).
//
// Each phase also reports where the CPU went (see cpu.go): the load
// generator shares the machine with what it measures.
//
// The exit status is 0 when the phases ran, 1 when the target could not be
// set up or a phase could not be prepared (the reason is printed), 2 for a
// bad command line, 130 when interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// options are the command-line flags.
type options struct {
	mode        string
	services    int
	apis        int
	mysqlDSN    string
	env         envFlag
	cheapHash   bool
	duration    time.Duration
	warmup      time.Duration
	maxRequests int
	concurrency int
	phases      []string
	hashSamples int
	timeout     time.Duration
	json        bool
	ceilingOnly bool
}

// allPhases is the order phases run in; later ones use the users and
// tokens earlier ones made (or make a few themselves when skipped).
var allPhases = []string{"register", "login", "get", "list"}

// errFlags reports a command line the flag package has already
// complained about.
var errFlags = errors.New("bad command line")

// envFlag collects repeated -env KEY=VALUE flags.
type envFlag map[string]string

func (e envFlag) String() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	return strings.Join(keys, ",")
}

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(k, "USERSVC_") || len(k) == len("USERSVC_") {
		return fmt.Errorf("want USERSVC_KEY=VALUE, got %q", s)
	}
	e[k] = v
	return nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{env: envFlag{}}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "dev", "target: dev (one usersvc dev process, SQLite) or distributed (etcd, MariaDB, services, APIs, gateway)")
	fs.IntVar(&o.services, "services", 1, "distributed: number of usersvc service processes")
	fs.IntVar(&o.apis, "apis", 1, "distributed: number of usersvc api processes")
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", "usersvc_test:usersvc_test@tcp(127.0.0.1:3306)/", "distributed: MariaDB server (loopback) on which a database usersvc_load_<random> is created and dropped")
	fs.Var(o.env, "env", "USERSVC_KEY=VALUE setting for every target process (repeatable), e.g. USERSVC_REDIS_URL=redis://127.0.0.1:6379/0")
	fs.BoolVar(&o.cheapHash, "cheap-hash", false, "keep the cluster's cheap argon2id parameters instead of the production ones")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase (at most 10m)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded warm-up before each read phase (get, list)")
	fs.IntVar(&o.maxRequests, "max-requests", 500_000, "request cap of each phase")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent workers")
	phases := fs.String("phases", strings.Join(allPhases, ","), "comma-separated phases to run, in this order: "+strings.Join(allPhases, ","))
	fs.IntVar(&o.hashSamples, "hash-samples", 10, "argon2id hashes timed for the login ceiling")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one HTTP request")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON too")
	fs.BoolVar(&o.ceilingOnly, "ceiling-only", false, "only measure the argon2id hash and the login ceiling; start no target")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errFlags // the flag package has printed it, and the usage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.mode != "dev" && o.mode != "distributed":
		return nil, fmt.Errorf("-mode must be dev or distributed, got %q", o.mode)
	case o.services < 1 || o.services > 16 || o.apis < 1 || o.apis > 16:
		return nil, errors.New("-services and -apis must be from 1 to 16")
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return nil, errors.New("-duration must be positive and at most 10m")
	case o.warmup < 0 || o.warmup > time.Minute:
		return nil, errors.New("-warmup must be from 0 to 1m")
	case o.maxRequests < 1 || o.maxRequests > 10_000_000:
		return nil, errors.New("-max-requests must be from 1 to 10000000")
	case o.concurrency < 1 || o.concurrency > 4096:
		return nil, errors.New("-concurrency must be from 1 to 4096")
	case o.hashSamples < 1 || o.hashSamples > 1000:
		return nil, errors.New("-hash-samples must be from 1 to 1000")
	case o.timeout <= 0 || o.timeout > 5*time.Minute:
		return nil, errors.New("-timeout must be positive and at most 5m")
	}
	for _, p := range strings.Split(*phases, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !contains(allPhases, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (known: %s)", p, strings.Join(allPhases, ","))
		}
		if contains(o.phases, p) {
			return nil, fmt.Errorf("-phases: %q twice", p)
		}
		o.phases = append(o.phases, p)
	}
	if len(o.phases) == 0 {
		return nil, errors.New("-phases: none given")
	}
	// Run them in the canonical order whatever order they were named in.
	var ordered []string
	for _, p := range allPhases {
		if contains(o.phases, p) {
			ordered = append(ordered, p)
		}
	}
	o.phases = ordered
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if !errors.Is(err, errFlags) {
			fmt.Fprintf(os.Stderr, "load: %v\n", err)
		}
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o *options) int {
	prog := cluster.NewProgram(os.Stderr)
	defer prog.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leftover, stopSignals := cancelOnSignal(cancel)
	defer stopSignals()

	res := &result{
		Mode: o.mode, Concurrency: o.concurrency, DurationS: o.duration.Seconds(), MaxRequests: o.maxRequests,
		CheapHash: o.cheapHash, Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now().UTC(),
		Env: map[string]string{},
	}
	if o.mode == "distributed" {
		res.Services, res.APIs = o.services, o.apis
	}

	// The ceiling is measured first, while the machine is quiet.
	prog.Logf("load: timing %d argon2id hashes with the production parameters…", o.hashSamples)
	h, err := measureHash(o.hashSamples)
	if err != nil {
		prog.Fatalf("load: %v", err)
	}
	res.Hash = h
	prog.Logf("load: one hash %s (min %s) → login ceiling %.1f/s on %d cores; measured with all cores hashing: %.1f/s",
		fmtDur(h.Mean), fmtDur(h.Min), h.CeilingPerS, res.Cores, h.ParallelPerS)
	if o.ceilingOnly {
		report(prog, o, res)
		if prog.Failed() {
			return 1
		}
		return 0
	}

	env := targetEnv(o)
	for k, v := range env {
		res.Env[k] = redact(k, v)
	}
	t, err := startTarget(ctx, prog, o, env, leftover)
	if err != nil {
		if ctx.Err() != nil {
			prog.Close()
			return 130
		}
		prog.Fatalf("load: %v", err)
	}
	res.Target = t.describe
	for _, p := range t.procs {
		res.Procs = append(res.Procs, p.name)
	}
	prog.Logf("load: target %s at %s", t.describe, t.url)

	interrupted := runPhases(ctx, prog, newDriver(o, t), o.phases, res)
	report(prog, o, res)
	prog.Close() // stop the target before reporting how it went
	switch {
	case interrupted || ctx.Err() != nil:
		return 130
	case prog.Failed():
		return 1
	}
	return 0
}

// cancelOnSignal makes the first ^C or SIGTERM call cancel, which stops
// the phases and tears the target down in order; a second one exits at
// once (the kernel then kills the usersvc processes, which die with their
// parent, but a MariaDB database may be left behind: what is sent on the
// returned channel is printed). stop ends the watch.
func cancelOnSignal(cancel context.CancelFunc) (leftover chan<- string, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	left := make(chan string, 1)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "load: %v: stopping (again to exit at once)\n", s)
		cancel()
		if _, ok := <-sigs; !ok {
			return
		}
		select {
		case what := <-left:
			fmt.Fprintf(os.Stderr, "load: exiting at once; %s may be left behind\n", what)
		default:
			fmt.Fprintln(os.Stderr, "load: exiting at once")
		}
		os.Exit(130)
	}()
	return left, func() { signal.Stop(sigs); close(sigs) }
}

// runPhases runs the phases in order into res, and reports whether a
// signal or a phase's own interruption cut them short.
func runPhases(ctx context.Context, prog *cluster.Program, d *driver, phases []string, res *result) (interrupted bool) {
	for _, name := range phases {
		if ctx.Err() != nil {
			return true
		}
		prog.Logf("load: phase %s…", name)
		pr, err := d.runPhase(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return true
			}
			prog.Errorf("load: phase %s: %v", name, err)
			continue
		}
		res.Phases = append(res.Phases, pr)
		prog.Logf("load: phase %s: %d requests, %.0f req/s, p99 %s%s", name, pr.Requests, pr.RPS,
			fmtDur(pr.P99), errSummary(pr))
		if pr.Interrupted {
			return true
		}
	}
	return false
}

// report prints the result as markdown, and as JSON with --json.
func report(prog *cluster.Program, o *options, res *result) {
	res.finish()
	printMarkdown(os.Stdout, res)
	if o.json {
		if err := printJSON(os.Stdout, res); err != nil {
			prog.Errorf("load: %v", err)
		}
	}
}

// targetEnv is the USERSVC_* settings every target process gets on top of
// the cluster package's: production argon2id (unless -cheap-hash), rate
// limits out of the way, then the -env flags.
func targetEnv(o *options) map[string]string {
	env := map[string]string{
		"USERSVC_RATE_LOGIN_IP":      "100000000/1m",
		"USERSVC_RATE_LOGIN_ACCOUNT": "100000000/1m",
		"USERSVC_RATE_REGISTER_IP":   "100000000/1m",
		"USERSVC_RATE_RESET_IP":      "100000000/1m",
		"USERSVC_RATE_RESET_ACCOUNT": "100000000/1m",
	}
	if !o.cheapHash {
		p := productionParams()
		env["USERSVC_ARGON2_MEMORY_KIB"] = fmt.Sprint(p.Memory)
		env["USERSVC_ARGON2_ITERATIONS"] = fmt.Sprint(p.Iterations)
		env["USERSVC_ARGON2_THREADS"] = fmt.Sprint(p.Parallelism)
	}
	for k, v := range o.env {
		env[k] = v
	}
	return env
}

// redact hides the values of settings that may hold credentials.
func redact(key, value string) string {
	for _, s := range []string{"URL", "DSN", "PASSWORD", "SECRET"} {
		if strings.Contains(key, s) && value != "" {
			return "(set)"
		}
	}
	return value
}
