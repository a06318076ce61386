package soak

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/line"
)

// TestWindowPercentiles: a window's percentiles come from the difference
// of two cumulative histograms, to within a bucket (5%).
func TestWindowPercentiles(t *testing.T) {
	hist := func(ms ...float64) line.Histogram {
		h := line.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
		for _, v := range ms {
			h.Count++
			for i, b := range bounds {
				if v <= b {
					h.Counts[i]++
				}
			}
		}
		return h
	}
	// The earlier window: 100 verdicts at 1 ms. This window adds 98 at
	// 2 ms, one at 20 ms and one at 300 ms.
	prev := hist(rep(1, 100)...)
	all := append(rep(1, 100), append(rep(2, 98), 20, 300)...)
	w := diff(hist(all...), prev)
	if w.Count != 100 {
		t.Fatalf("count %d", w.Count)
	}
	for _, tc := range []struct {
		q, want float64
	}{{0.5, 2}, {0.99, 20}, {1, 300}} {
		got := quantile(w, tc.q)
		if got < tc.want || got > tc.want*1.05 {
			t.Errorf("q%.2f = %.3f, want %.0f … +5%%", tc.q, got, tc.want)
		}
	}
	if quantile(line.Histogram{}, 0.5) != 0 {
		t.Error("empty window")
	}
	if !math.IsInf(quantile(hist(1e6), 1), 1) {
		t.Error("past the last bound")
	}
}

func rep(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestJudge: growth over a threshold, a batch that did not reconcile and
// a slow window are failures; within the thresholds everything passes.
func TestJudge(t *testing.T) {
	idle := func(g, fds int, heap, rss float64) Process {
		return Process{Goroutines: g, FDs: fds, HeapMB: heap, RSSMB: rss}
	}
	good := func(name string, p Process) Batch {
		return Batch{Batch: name, Units: 1000, Verdicts: 990, InvariantsOK: true, GroundTruthOK: true, MedianGoroutines: 220, MedianFDs: 80, Idle: p}
	}
	cfg := Config{Duration: 10 * time.Minute, Interval: 10 * time.Second, BatchUnits: 1000}
	samples := []Sample{{Full: true, Verdicts: 198, Fed: 200, PerMin: 1190}, {Full: false, Verdicts: 20, Fed: 100, PerMin: 120}}

	ok := &Report{Batches: []Batch{good("B1", idle(13, 17, 100, 180)), good("B2", idle(14, 17, 105, 200)), good("B3", idle(15, 18, 108, 205))}, Samples: samples}
	judge(ok, 1200, cfg)
	if !ok.Result.Passed() {
		t.Fatalf("within thresholds, failed: %v", ok.Result.Failures)
	}

	bad := &Report{Batches: []Batch{good("B1", idle(13, 17, 100, 180)), good("B2", idle(30, 25, 150, 300))},
		Samples: append(samples, Sample{Full: true, Verdicts: 100, Fed: 200, PerMin: 600})}
	bad.Batches[1].GroundTruthOK = false
	bad.Batches[1].Problems = "unit 17: rejected on the line, commissioned in the ledger"
	bad.Batches[1].DeadlineMisses = 2
	judge(bad, 1200, cfg)
	msgs := strings.Join(bad.Result.Failures, "\n")
	for _, want := range []string{"unit 17", "2 of 1980 verdicts missed their deadline", "goroutines with no line running", "open files with no line running", "live heap", "resident memory", "1 of 2 windows: verdicts outside 95–105% of the units fed"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("failures lack %q:\n%s", want, msgs)
		}
	}
	if bad.Result.Passed() {
		t.Error("passed")
	}
	bad.Result.Campaign, bad.Result.Started = "soak", time.Now()
	if err := bad.Result.Validate(); err != nil {
		t.Error(err)
	}

	one := &Report{Batches: []Batch{good("B1", idle(13, 17, 100, 180))}}
	judge(one, 1200, cfg)
	if one.Result.Passed() || !strings.Contains(strings.Join(one.Result.Failures, " "), "not judged") {
		t.Errorf("one batch: %v", one.Result.Failures)
	}
}
