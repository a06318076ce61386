package demo

import (
	"math"
	"runtime/metrics"
)

// RuntimeStats is what the Go runtime did during one run, from
// runtime/metrics read before and after it: the garbage collector's work
// and pauses, allocation per unit, and the scheduler's latency (how long
// goroutines waited, runnable, for a thread). CPU and counts, not wall
// time: they are what a shared machine does not blur.
type RuntimeStats struct {
	GCCycles         uint64  `json:"gc_cycles"`
	GCPauseP99ms     float64 `json:"gc_pause_p99_ms"`
	GCPauseMaxms     float64 `json:"gc_pause_max_ms"` // an upper bound: the histogram bucket's
	GCCPUPercent     float64 `json:"gc_cpu_percent"`  // of the CPU time the process used, assist included
	AllocBytesPerU   float64 `json:"alloc_bytes_per_unit"`
	AllocObjsPerU    float64 `json:"allocs_per_unit"`
	SchedLatP99ms    float64 `json:"sched_latency_p99_ms"`
	SchedLatMaxms    float64 `json:"sched_latency_max_ms"` // an upper bound: the histogram bucket's
	HeapGoalMB       float64 `json:"heap_goal_mb"`         // at the end of the run
	GOMAXPROCS       uint64  `json:"gomaxprocs"`
	GoroutinesAtEnd  uint64  `json:"goroutines_at_end"`
	UsedCPUSeconds   float64 `json:"go_cpu_s"` // CPU time the Go runtime used (all but idle Ps)
	ScavengeCPUShare float64 `json:"scavenge_cpu_percent"`
}

var runtimeMetricNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/total/gc:seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/cpu/classes/scavenge/total:cpu-seconds",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/sched/latencies:seconds",
	"/gc/heap/goal:bytes",
	"/sched/gomaxprocs:threads",
	"/sched/goroutines:goroutines",
	"/cpu/classes/idle:cpu-seconds",
}

// runtimeSnap is one reading of runtimeMetricNames.
type runtimeSnap []metrics.Sample

func readRuntime() runtimeSnap {
	s := make([]metrics.Sample, len(runtimeMetricNames))
	for i, n := range runtimeMetricNames {
		s[i].Name = n
	}
	metrics.Read(s)
	return s
}

func (s runtimeSnap) u64(i int) uint64 {
	if s[i].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[i].Value.Uint64()
}

func (s runtimeSnap) f64(i int) float64 {
	if s[i].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[i].Value.Float64()
}

func (s runtimeSnap) hist(i int) *metrics.Float64Histogram {
	if s[i].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[i].Value.Float64Histogram()
}

// runtimeDelta is what happened between before and after, per unit where
// it says so.
func runtimeDelta(before, after runtimeSnap, units int) RuntimeStats {
	rs := RuntimeStats{
		GCCycles:        after.u64(0) - before.u64(0),
		HeapGoalMB:      float64(after.u64(8)) / (1 << 20),
		GOMAXPROCS:      after.u64(9),
		GoroutinesAtEnd: after.u64(10),
	}
	rs.GCPauseP99ms, rs.GCPauseMaxms = histDelta(before.hist(1), after.hist(1))
	rs.SchedLatP99ms, rs.SchedLatMaxms = histDelta(before.hist(7), after.hist(7))
	cpu := (after.f64(3) - after.f64(11)) - (before.f64(3) - before.f64(11))
	rs.UsedCPUSeconds = cpu
	if cpu > 0 {
		rs.GCCPUPercent = 100 * (after.f64(2) - before.f64(2)) / cpu
		rs.ScavengeCPUShare = 100 * (after.f64(4) - before.f64(4)) / cpu
	}
	if units > 0 {
		rs.AllocBytesPerU = float64(after.u64(5)-before.u64(5)) / float64(units)
		rs.AllocObjsPerU = float64(after.u64(6)-before.u64(6)) / float64(units)
	}
	return rs
}

// histDelta is the p99 and the max (upper bounds of their buckets, in ms)
// of the samples added to a cumulative histogram between a and b.
func histDelta(a, b *metrics.Float64Histogram) (p99, maxMs float64) {
	if a == nil || b == nil || len(a.Counts) != len(b.Counts) {
		return 0, 0
	}
	d := make([]uint64, len(b.Counts))
	var n uint64
	for i := range b.Counts {
		d[i] = b.Counts[i] - a.Counts[i]
		n += d[i]
	}
	if n == 0 {
		return 0, 0
	}
	upper := func(i int) float64 {
		u := b.Buckets[i+1]
		if math.IsInf(u, 1) {
			u = b.Buckets[i]
		}
		return u * 1000
	}
	want := n - n/100 // the sample at the 99th percentile, counted from the bottom
	var seen uint64
	for i, c := range d {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= want && p99 == 0 {
			p99 = upper(i)
		}
		maxMs = upper(i)
	}
	return p99, maxMs
}
