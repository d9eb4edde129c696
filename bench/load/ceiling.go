package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/usersvc/usersvc/internal/password"
)

// hashTiming is the cost of one argon2id hash with the production
// parameters, measured in this process, and the login ceiling it implies.
type hashTiming struct {
	Params      string        `json:"params"`
	Samples     int           `json:"samples"`
	Mean        time.Duration `json:"mean_ns"`
	Min         time.Duration `json:"min_ns"`
	CeilingPerS float64       `json:"login_ceiling_per_s"` // cores / Mean
	// ParallelPerS is the hash rate measured with one goroutine per core
	// hashing at once: what the machine really delivers, which is below
	// CeilingPerS when the cores share caches or memory bandwidth.
	ParallelPerS float64 `json:"parallel_hashes_per_s"`
}

// productionParams are the parameters the service uses by default.
func productionParams() password.Params { return password.DefaultParams() }

// measureHash times n hashes one after the other (after one untimed, which
// pays for the first allocation of the memory block), then n hashes on
// each core at once. A login verifies one
// hash, which costs what hashing does, so on c cores no more than c / mean
// logins a second are possible — less, as the service does other work and
// here shares the cores with the load generator.
func measureHash(n int) (hashTiming, error) {
	p := productionParams()
	h, err := password.NewHasher(p)
	if err != nil {
		return hashTiming{}, fmt.Errorf("argon2id hasher: %v", err)
	}
	const pw = "correct horse battery staple"
	if _, err := h.Hash(context.Background(), pw); err != nil {
		return hashTiming{}, fmt.Errorf("argon2id hash: %v", err)
	}
	var total, lowest time.Duration
	for i := range n {
		start := time.Now()
		if _, err := h.Hash(context.Background(), pw); err != nil {
			return hashTiming{}, fmt.Errorf("argon2id hash: %v", err)
		}
		d := time.Since(start)
		total += d
		if i == 0 || d < lowest {
			lowest = d
		}
	}
	mean := total / time.Duration(n)

	// The same number of hashes per core, all cores at once.
	cores := runtime.NumCPU()
	errs := make([]error, cores)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range cores {
		wg.Go(func() {
			for range n {
				if _, err := h.Hash(context.Background(), pw); err != nil {
					errs[c] = err
					return
				}
			}
		})
	}
	wg.Wait()
	parallel := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return hashTiming{}, fmt.Errorf("argon2id hash: %v", err)
	}
	return hashTiming{
		Params:       fmt.Sprintf("argon2id m=%d KiB, t=%d, p=%d", p.Memory, p.Iterations, p.Parallelism),
		Samples:      n,
		Mean:         mean,
		Min:          lowest,
		CeilingPerS:  float64(cores) / mean.Seconds(),
		ParallelPerS: float64(cores*n) / parallel.Seconds(),
	}, nil
}
