package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is everything a run reports.
type result struct {
	Mode        string            `json:"mode"`
	Target      string            `json:"target"`
	Procs       []string          `json:"processes"` // the usersvc processes, gateway first
	Services    int               `json:"services,omitempty"`
	APIs        int               `json:"apis,omitempty"`
	Concurrency int               `json:"concurrency"`
	DurationS   float64           `json:"phase_duration_s"`
	MaxRequests int               `json:"max_requests_per_phase"`
	CheapHash   bool              `json:"cheap_hash"`
	Env         map[string]string `json:"env"`
	Cores       int               `json:"cores"`
	CPUModel    string            `json:"cpu_model"`
	GoVersion   string            `json:"go_version"`
	Started     time.Time         `json:"started"`
	Hash        hashTiming        `json:"hash"`
	// LoginPct is the login phase's throughput as a percentage of
	// Hash.CeilingPerS (0 when there was no login phase, or -cheap-hash).
	LoginPct float64        `json:"login_pct_of_ceiling,omitempty"`
	Phases   []*phaseResult `json:"phases"`
}

func (r *result) finish() {
	r.CPUModel = cpuModel()
	for _, p := range r.Phases {
		if p.Name == "login" && !r.CheapHash && r.Hash.CeilingPerS > 0 {
			r.LoginPct = 100 * p.RPS / r.Hash.CeilingPerS
		}
	}
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func printMarkdown(w io.Writer, r *result) {
	fmt.Fprintf(w, "\n### usersvc load: %s\n\n", r.Mode)
	fmt.Fprintf(w, "- target: %s\n", r.Target)
	fmt.Fprintf(w, "- machine: %d cores (%s), %s, %s; the load generator runs on the same cores\n",
		r.Cores, r.CPUModel, r.GoVersion, r.Started.Format(time.RFC3339))
	hash := r.Hash.Params
	if r.CheapHash {
		hash = "the cluster's cheap argon2id parameters (-cheap-hash)"
	}
	fmt.Fprintf(w, "- load: %d workers, %s per phase (cap %d requests), password hashing %s\n",
		r.Concurrency, time.Duration(r.DurationS*float64(time.Second)), r.MaxRequests, hash)
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + r.Env[k]
	}
	fmt.Fprintf(w, "- settings: %s\n\n", strings.Join(keys, " "))

	fmt.Fprintln(w, "| phase | route | requests | ok | errors | req/s | p50 | p90 | p99 | max | CPU cores: usersvc / db+cache / loadgen / softirq / other |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
	for _, p := range r.Phases {
		cpu := "–"
		if p.CPU != nil {
			cpu = fmt.Sprintf("%.2f / %.2f / %.2f / %.2f / %.2f", p.CPU.Target, p.CPU.Backing, p.CPU.Self, p.CPU.IRQ, p.CPU.Other)
		}
		name := p.Name
		if p.Interrupted {
			name += " (interrupted)"
		}
		fmt.Fprintf(w, "| %s | `%s` | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			name, p.Route, p.Requests, p.OK, errCell(p), fmtRate(p.RPS),
			fmtDur(p.P50), fmtDur(p.P90), fmtDur(p.P99), fmtDur(p.Max), cpu)
	}
	if len(r.Procs) > 1 {
		fmt.Fprintf(w, "\nCPU of each usersvc process (cores):\n\n| phase | %s |\n|---|%s\n",
			strings.Join(r.Procs, " | "), strings.Repeat("---:|", len(r.Procs)))
		for _, p := range r.Phases {
			if p.CPU == nil {
				continue
			}
			cells := make([]string, len(r.Procs))
			for i, name := range r.Procs {
				cells[i] = fmt.Sprintf("%.2f", p.CPU.ByProc[name])
			}
			fmt.Fprintf(w, "| %s | %s |\n", p.Name, strings.Join(cells, " | "))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Login ceiling: one hash (%s) takes %s (min %s, %d samples, in-process) → %d cores ÷ %s = %.1f logins/s"+
		" (all %d cores hashing at once measured %.1f hashes/s).",
		r.Hash.Params, fmtDur(r.Hash.Mean), fmtDur(r.Hash.Min), r.Hash.Samples, r.Cores, fmtDur(r.Hash.Mean), r.Hash.CeilingPerS,
		r.Cores, r.Hash.ParallelPerS)
	for _, p := range r.Phases {
		if p.Name != "login" {
			continue
		}
		if r.CheapHash {
			fmt.Fprintf(w, " Login ran with cheap hashing (%.1f/s); the ceiling does not apply.", p.RPS)
		} else {
			fmt.Fprintf(w, " Login: %.1f/s = %.0f%% of the ceiling.", p.RPS, r.LoginPct)
		}
	}
	fmt.Fprintln(w)
	for _, p := range r.Phases {
		if p.ErrorSample != "" {
			fmt.Fprintf(w, "\nFirst failure of %s: %s\n", p.Name, p.ErrorSample)
		}
	}
}

func printJSON(w io.Writer, r *result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", b)
	return nil
}

// errCell lists the failed requests by status, e.g. "500×3, transport×1".
func errCell(p *phaseResult) string {
	if len(p.Errors) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(p.Errors))
	for k := range p.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "×" + strconv.Itoa(p.Errors[k])
	}
	return strings.Join(parts, ", ")
}

func errSummary(p *phaseResult) string {
	if len(p.Errors) == 0 {
		return ""
	}
	return ", errors " + errCell(p)
}

func fmtRate(rps float64) string {
	if rps >= 100 {
		return strconv.FormatFloat(rps, 'f', 0, 64)
	}
	return strconv.FormatFloat(rps, 'f', 1, 64)
}

// fmtDur prints a latency in milliseconds, e.g. "3.21 ms".
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}
