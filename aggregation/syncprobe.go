package aggregation

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"golang.org/x/sys/unix"
)

// SyncStats is the latency of the disk's own durability primitive,
// measured apart from the ledger, in milliseconds.
type SyncStats struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50"`
	P99ms float64 `json:"p99"`
	MaxMs float64 `json:"max"`
	// Slow are the probe's syncs of slowProbeSync or more (the first
	// maxSlowProbes), with when each began: a stall of the disk, seen on a
	// file nobody else writes.
	Slow []ProbeStall `json:"slow,omitempty"`
}

// ProbeStall is one slow sync of a probe: when it began and how long it
// took.
type ProbeStall struct {
	At time.Time `json:"at"`
	Ms float64   `json:"ms"`
}

// Overlap is how long the stall and the interval [from, from+d] have in
// common.
func (p ProbeStall) Overlap(from time.Time, d time.Duration) time.Duration {
	end := p.At.Add(time.Duration(p.Ms * float64(time.Millisecond)))
	lo, hi := p.At, end
	if from.After(lo) {
		lo = from
	}
	if to := from.Add(d); to.Before(hi) {
		hi = to
	}
	if !lo.Before(hi) {
		return 0
	}
	return hi.Sub(lo)
}

const (
	slowProbeSync = 10 * time.Millisecond
	maxSlowProbes = 256
)

// ProbeSync measures n fdatasync calls, each after a 4 KiB write over
// blocks already allocated and written, on a scratch file in dir (removed
// after): the floor under any durable write the ledger makes there (its
// redo log overwrites zero-filled segments the same way). The file's 1 MiB
// is written and synced first, unmeasured, so that no measured sync
// allocates a block or converts an extent. Benchmarks report it beside the
// journal's latency, measured in the same run.
func ProbeSync(dir string, n int) (SyncStats, error) { return ProbeSyncPaced(dir, n, 0) }

// ProbeSyncPaced is ProbeSync with a pause of gap before each write: the
// disk synced at a line's cadence rather than back to back. The two differ
// on virtual disks: here (a cloud VM's virtio disk) an fdatasync after
// 30 ms of quiet took 0.8–1 ms at p50 and 2–4 ms at p99, against 0.15 and
// 0.4–0.6 ms back to back — whatever the record's size (4–64 KiB) and
// whether the CPU spun or slept meanwhile. A line at 1,200 units/min syncs
// every 30 ms or so: its journal pays the paced figure, not the other.
func ProbeSyncPaced(dir string, n int, gap time.Duration) (SyncStats, error) {
	if n < 1 {
		return SyncStats{}, fmt.Errorf("sync probe: n %d must be at least 1", n)
	}
	return probeSync(dir, n, gap, nil)
}

// ProbeSyncDuring probes the disk as ProbeSyncPaced does, one sync every
// gap, from now until stop is called, which returns the figures: the disk
// measured while something else (a line) uses it and the CPU, as that
// other user's own syncs meet it. The probe's syncs add to the disk's load:
// at a gap of a few times the other user's, little.
func ProbeSyncDuring(dir string, gap time.Duration) (stop func() (SyncStats, error)) {
	quit := make(chan struct{})
	type result struct {
		st  SyncStats
		err error
	}
	out := make(chan result, 1)
	go func() {
		st, err := probeSync(dir, 0, gap, quit)
		out <- result{st, err}
	}()
	return func() (SyncStats, error) {
		close(quit)
		r := <-out
		return r.st, r.err
	}
}

// probeSync takes n syncs (0: until quit is closed), each after gap.
func probeSync(dir string, n int, gap time.Duration, quit <-chan struct{}) (SyncStats, error) {
	f, err := os.CreateTemp(dir, "syncprobe-*")
	if err != nil {
		return SyncStats{}, fmt.Errorf("sync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.WriteAt(make([]byte, 256*len(buf)), 0); err != nil {
		return SyncStats{}, fmt.Errorf("sync probe: %w", err)
	}
	if err := f.Sync(); err != nil {
		return SyncStats{}, fmt.Errorf("sync probe: fsync: %w", err)
	}
	lat := make([]time.Duration, 0, max(n, 64))
	var slow []ProbeStall
	for i := 0; n == 0 || i < n; i++ {
		if quit != nil || gap > 0 {
			select {
			case <-quit:
				n = -1
			case <-time.After(gap):
			}
			if n < 0 {
				break
			}
		}
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			return SyncStats{}, fmt.Errorf("sync probe: %w", err)
		}
		t0 := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return SyncStats{}, fmt.Errorf("sync probe: fdatasync: %w", err)
		}
		d := time.Since(t0)
		lat = append(lat, d)
		if d >= slowProbeSync && len(slow) < maxSlowProbes {
			slow = append(slow, ProbeStall{At: t0, Ms: benchstat.Ms(d)})
		}
	}
	n = len(lat)
	if n == 0 {
		return SyncStats{}, errors.New("sync probe: stopped before its first sync")
	}
	st := SyncStats{N: n, Slow: slow}
	st.P50ms, st.P99ms, st.MaxMs = benchstat.Pct(lat)
	return st, nil
}
