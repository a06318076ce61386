package line

import (
	"sort"
	"time"
)

// Histogram is a cumulative latency histogram of one verdict stage, built
// on request from the runner's statistics (nothing is added to the verdict
// path): Counts[i] is how many took at most Bounds[i] ms. A new batch
// starts from zero (a Prometheus histogram sees a counter reset).
type Histogram struct {
	Bounds []float64 `json:"le_ms"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	SumMs  float64   `json:"sum_ms"`
}

// DefaultLatencyBounds are histogram bounds in ms for verdict latency.
var DefaultLatencyBounds = []float64{0.5, 1, 2, 5, 10, 20, 50, 80, 100, 200, 500}

// Histograms returns, per stage (total: camera result → verdict written;
// queue, journal, plc, controller, camera, print_wait as in StatsReport.Stages), the
// verdicts' latency histogram over bounds (ms, ascending; nil: the default).
func (r *Runner) Histograms(bounds []float64) map[string]Histogram {
	if bounds == nil {
		bounds = DefaultLatencyBounds
	}
	bounds = append([]float64(nil), bounds...)
	sort.Float64s(bounds)
	s := r.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Histogram{"total": histogram(s.lat, bounds)}
	for i, name := range stageNames {
		out[name] = histogram(s.stages[i], bounds)
	}
	return out
}

func histogram(ds []time.Duration, bounds []float64) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)), Count: uint64(len(ds))}
	for _, d := range ds {
		ms := float64(d.Microseconds()) / 1000
		h.SumMs += ms
		i := sort.SearchFloat64s(bounds, ms) // first bound ≥ ms
		if i < len(bounds) {
			h.Counts[i]++
		}
	}
	for i := 1; i < len(h.Counts); i++ {
		h.Counts[i] += h.Counts[i-1]
	}
	return h
}

// Histograms returns the current (or last) batch's verdict latency
// histograms by stage (see Runner.Histograms); none with no batch yet.
func (l *Line) Histograms(bounds []float64) map[string]Histogram {
	if run := l.cur.Load(); run != nil {
		return run.r.Histograms(bounds)
	}
	return map[string]Histogram{}
}
