package aggregation

import (
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// SyncStats is the latency of the disk's own durability primitive,
// measured apart from the ledger, in milliseconds.
type SyncStats struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50"`
	P99ms float64 `json:"p99"`
	MaxMs float64 `json:"max"`
}

// ProbeSync measures n fdatasync calls, each after a 4 KiB write over
// blocks already allocated and written, on a scratch file in dir (removed
// after): the floor under any durable write the ledger makes there (its
// redo log overwrites zero-filled segments the same way). The file's 1 MiB
// is written and synced first, unmeasured, so that no measured sync
// allocates a block or converts an extent. Benchmarks report it beside the
// journal's latency, measured in the same run.
func ProbeSync(dir string, n int) (SyncStats, error) {
	if n < 1 {
		return SyncStats{}, fmt.Errorf("sync probe: n %d must be at least 1", n)
	}
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
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			return SyncStats{}, fmt.Errorf("sync probe: %w", err)
		}
		t0 := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return SyncStats{}, fmt.Errorf("sync probe: fdatasync: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return SyncStats{N: n, P50ms: ms(lat[n/2]), P99ms: ms(lat[min(n-1, n*99/100)]), MaxMs: ms(lat[n-1])}, nil
}
