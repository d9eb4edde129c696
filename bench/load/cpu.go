package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The load generator shares the machine's cores with what it measures, so
// each phase reports where the CPU time went, in cores (CPU seconds per
// wall second): the usersvc processes, the database and cache servers
// (MariaDB, Redis), this process (the load generator and, in distributed
// mode, the embedded etcd), interrupts and softirqs (the loopback network
// stack, charged to no process), and everything else on the machine. Linux
// only; elsewhere the numbers are absent.

// clockTicks is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// backingNames are the process names (comm) counted as database and cache.
var backingNames = []string{"mariadbd", "mysqld", "redis-server"}

// cpuSample is a snapshot of cumulative CPU times.
type cpuSample struct {
	at      time.Time
	target  time.Duration
	byProc  []time.Duration // per target process, in target.procs order
	backing time.Duration
	self    time.Duration
	machine time.Duration // busy time of all CPUs
	irq     time.Duration // of which interrupts and softirqs (loopback networking)
	ok      bool
}

// cpuUse is the CPU time of one phase, in cores.
type cpuUse struct {
	Target  float64            `json:"target_cores"`
	ByProc  map[string]float64 `json:"target_cores_by_process"`
	Backing float64            `json:"db_cache_cores"`
	Self    float64            `json:"loadgen_cores"`
	IRQ     float64            `json:"irq_softirq_cores"`
	Other   float64            `json:"other_cores"`
}

func sampleCPU(target []proc) cpuSample {
	s := cpuSample{at: time.Now()}
	machine, irq, ok := machineBusy()
	if !ok {
		return s
	}
	s.machine, s.irq, s.ok = machine, irq, true
	for _, p := range target {
		d := procCPU(p.pid)
		s.byProc = append(s.byProc, d)
		s.target += d
	}
	for _, pid := range pidsNamed(backingNames) {
		s.backing += procCPU(pid)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// since is the CPU use between an earlier sample and s.
func (s cpuSample) since(before cpuSample, target []proc) (cpuUse, bool) {
	wall := s.at.Sub(before.at).Seconds()
	if !s.ok || !before.ok || wall <= 0 || len(s.byProc) != len(target) || len(before.byProc) != len(target) {
		return cpuUse{}, false
	}
	cores := func(d time.Duration) float64 { return max(d.Seconds()/wall, 0) }
	u := cpuUse{
		Target:  cores(s.target - before.target),
		ByProc:  map[string]float64{},
		Backing: cores(s.backing - before.backing),
		Self:    cores(s.self - before.self),
		IRQ:     cores(s.irq - before.irq),
	}
	for i, p := range target {
		u.ByProc[p.name] = cores(s.byProc[i] - before.byProc[i])
	}
	u.Other = max(cores(s.machine-before.machine)-u.Target-u.Backing-u.Self-u.IRQ, 0)
	return u, true
}

// machineBusy is the busy time of all CPUs from /proc/stat — everything but
// idle and iowait (guest time is already inside user and nice) — and the
// part of it spent in interrupts and softirqs, which the kernel charges to
// no process: on loopback that is mostly the network stack.
func machineBusy() (busy, irq time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	var total, irqTicks int64
	for i := 1; i <= 8; i++ { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		switch i {
		case 4, 5:
		case 6, 7:
			irqTicks += n
			total += n
		default:
			total += n
		}
	}
	return ticks(total), ticks(irqTicks), true
}

// procCPU is a process's user plus system time from /proc/<pid>/stat (0
// when it is gone).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces; fields resume after
	// its closing parenthesis, with state (field 3) first.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	return ticks(utime + stime)
}

// pidsNamed lists the processes whose comm is one of names.
func pidsNamed(names []string) []int {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil
	}
	var pids []int
	for _, dir := range dirs {
		comm, err := os.ReadFile(dir + "/comm")
		if err != nil {
			continue
		}
		if contains(names, strings.TrimSpace(string(comm))) {
			if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
