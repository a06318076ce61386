// Package benchstat holds the small figures the ledger benchmark and its
// PostgreSQL peer report alike: latency percentiles in milliseconds and the
// process's CPU time.
package benchstat

import (
	"sort"
	"syscall"
	"time"
)

// ProcessCPU is the user and system CPU time this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Pct is the p50, p99 and maximum of d in milliseconds (0s if d is empty).
func Pct(d []time.Duration) (p50, p99, mx float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 { return Ms(s[min(len(s)-1, int(q*float64(len(s))))]) }
	return at(0.50), at(0.99), Ms(s[len(s)-1])
}

// Ms is d in milliseconds, to the microsecond.
func Ms(d time.Duration) float64 { return Round(float64(d.Microseconds()) / 1000) }

// Round rounds f to three decimals.
func Round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
