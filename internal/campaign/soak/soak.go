// Package soak is the soak campaign of issue 13 (`linectl bench soak`):
// the demo line (internal/demo) run batch after batch at a rate for a
// duration, sampled every interval — throughput, verdict latency p50 / p99
// / max per window, heap, RSS, goroutines, open files — and judged for
// growth against fixed thresholds (Thresholds).
//
// Each batch is one demo.Line: a fresh simulated line and controller on
// the same data directory (one ledger growing batch after batch, as a
// line's does), checked at its end against the simulator's ground truth
// and the ledger's invariants. Between batches nothing of the process's
// line runs, so goroutines and open files then must come back to where
// they were before the first batch: a leak per batch shows as growth.
//
// Who may import it: cmd/linectl.
package soak

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/internal/campaign"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
)

// Config is one soak.
type Config struct {
	// Demo is the line: rate, seed (batch i runs seed+i), faults, product,
	// data directory ("" a temporary one, removed at the end).
	Demo demo.Options
	Wire demo.Wire
	// Duration is how long the line runs (batches are started while time
	// is left; the last one is cut to fit).
	Duration time.Duration
	// Batches, if > 0, runs exactly this many batches of BatchUnits
	// instead (Duration then only sets the defaults), whatever the
	// machine's speed.
	Batches int
	// Interval is the sampling period (default Duration/60, 5 s … 60 s).
	Interval time.Duration
	// BatchUnits is each batch's size (default: 5 minutes of the rate, or
	// a third of the duration if shorter, so that growth is judged over
	// at least three batches).
	BatchUnits int
	// Command is how to run it again (the result says it).
	Command string
	// Progress, if set, hears every sample and batch (one call at a time).
	Progress func(string)
}

// Thresholds are what "no growth" means. Idle: no line in the process —
// after each batch, its line closed, a forced GC and the free memory
// returned to the OS; the first batch's idle state (one-time
// initialisation done) against the last's. Running: the median of a
// batch's samples, the first batch's against the last's.
var Thresholds = struct {
	IdleGoroutines, IdleFDs       int     // last − first
	RunGoroutines, RunFDs         int     // last − first
	HeapFrac                      float64 // idle live heap: last ≤ first × (1+HeapFrac) …
	HeapSlackMB                   float64 // … or first + HeapSlackMB, whichever is larger
	RSSFrac                       float64 // idle RSS: last ≤ first × (1+RSSFrac) …
	RSSSlackMB                    float64 // … or first + RSSSlackMB
	ThroughputLow, ThroughputHigh float64 // a full window's verdicts within its units fed × [low, high]
}{
	IdleGoroutines: 3, IdleFDs: 2,
	RunGoroutines: 10, RunFDs: 5,
	HeapFrac: 0.10, HeapSlackMB: 8,
	RSSFrac: 0.15, RSSSlackMB: 32,
	ThroughputLow: 0.95, ThroughputHigh: 1.05,
}

// Sample is one window.
type Sample struct {
	At       float64 `json:"t_s"` // end of the window, since the start
	Batch    string  `json:"batch"`
	Full     bool    `json:"full"` // the whole window inside one running batch
	Verdicts int     `json:"verdicts"`
	PerMin   float64 `json:"verdicts_per_min"`
	// Fed is the units the simulated line put on the belt in the window
	// (its PLC's trigger counter): what there was to decide.
	Fed        int     `json:"units_fed"`
	FedPerMin  float64 `json:"units_fed_per_min"`
	P50ms      float64 `json:"verdict_p50_ms"` // upper bound of the histogram bucket (≤ 5% over)
	P99ms      float64 `json:"verdict_p99_ms"`
	MaxMs      float64 `json:"verdict_max_ms"`
	HeapMB     float64 `json:"heap_alloc_mb"`
	HeapSysMB  float64 `json:"heap_sys_mb"`
	RSSMB      float64 `json:"rss_mb"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"open_files"`
}

// Batch is one batch's end.
type Batch struct {
	Batch          string  `json:"batch"`
	Units          int     `json:"units"`
	InvariantsOK   bool    `json:"invariants_ok"`
	GroundTruthOK  bool    `json:"ground_truth_ok"`
	DeadlineMisses int     `json:"deadline_misses"`
	Simulator      string  `json:"simulator"` // where it ran (demo.Report.Simulator)
	Verdicts       int     `json:"verdicts"`
	P50ms          float64 `json:"verdict_p50_ms"`
	P99ms          float64 `json:"verdict_p99_ms"`
	MaxMs          float64 `json:"verdict_max_ms"`
	Problems       string  `json:"problems,omitempty"`
	Seconds        float64 `json:"wall_s"`
	// Running: the median and highest of its samples.
	MedianGoroutines int     `json:"median_goroutines"`
	MedianFDs        int     `json:"median_open_files"`
	PeakHeapMB       float64 `json:"peak_heap_alloc_mb"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	// Idle is the process after the batch, its line closed.
	Idle Process `json:"idle_after"`
}

// Report is the soak's own record: the samples and batches behind the
// campaign result.
type Report struct {
	Result  campaign.Result `json:"result"`
	Batches []Batch         `json:"batches"`
	Samples []Sample        `json:"samples"`
	// Start is the process before the first batch (nothing initialised).
	Start Process `json:"start"`
}

// Process is the process's footprint at one moment.
type Process struct {
	HeapMB     float64 `json:"live_heap_mb"` // after a forced GC
	RSSMB      float64 `json:"rss_mb"`       // after the free memory went back to the OS
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"open_files"`
	Load       string  `json:"loadavg"`
}

// bounds are the latency histogram's: 0.05 ms to ≈ 10 s, 5% apart.
var bounds = func() []float64 {
	var b []float64
	for v := 0.05; v < 10000; v *= 1.05 {
		b = append(b, math.Round(v*1000)/1000)
	}
	return b
}()

// Run runs the soak.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Duration <= 0 {
		return nil, errors.New("soak: the duration must be positive")
	}
	if cfg.Demo.Rate <= 0 {
		return nil, errors.New("soak: the rate must be positive")
	}
	if cfg.Wire == nil {
		return nil, errors.New("soak: no controller wiring")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(max(cfg.Duration/60, 5*time.Second), time.Minute)
	}
	if cfg.BatchUnits <= 0 {
		cfg.BatchUnits = int(cfg.Demo.Rate * min(5*time.Minute, cfg.Duration/3).Minutes())
	}
	if cfg.BatchUnits < 50 {
		return nil, fmt.Errorf("soak: %d units per batch is too few (a batch needs its challenge units and some)", cfg.BatchUnits)
	}
	progress := func(string) {}
	if cfg.Progress != nil {
		// The sampler and the batches report from two goroutines.
		var mu sync.Mutex
		progress = func(s string) {
			mu.Lock()
			defer mu.Unlock()
			cfg.Progress(s)
		}
	}
	o := cfg.Demo
	rep := &Report{}
	tmp := o.Data == ""
	if tmp {
		dir, err := os.MkdirTemp("", "tracline-soak-")
		if err != nil {
			return nil, err
		}
		o.Data = dir
		defer func() {
			// Kept when a batch did not reconcile (its data says why).
			for _, b := range rep.Batches {
				if !b.InvariantsOK || !b.GroundTruthOK {
					return
				}
			}
			os.RemoveAll(dir)
		}()
	}
	res := &rep.Result
	*res = campaign.Result{Campaign: "soak", Title: fmt.Sprintf("the demo line at %g units/min for %s, batch after batch", o.Rate, span(cfg)),
		Command: cfg.Command, Started: time.Now().UTC()}
	rep.Start = footprint()
	start := time.Now()
	end := start.Add(cfg.Duration)

	s := &sampler{start: start, interval: cfg.Interval, progress: progress}
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.run(sctx) }()

	var runErr error
	failedInARow := 0
	for i := 0; ctx.Err() == nil; i++ {
		units := cfg.BatchUnits
		if cfg.Batches > 0 {
			if i == cfg.Batches {
				break
			}
		} else {
			units = min(units, int(o.Rate*time.Until(end).Minutes()))
			if units < 50 || (i > 0 && units < cfg.BatchUnits/4) {
				break // too little time left for a batch worth the name
			}
		}
		b, err := runBatch(ctx, o, cfg.Wire, i, units, s)
		if err != nil {
			if ctx.Err() != nil {
				runErr = fmt.Errorf("soak: stopped in batch %d: %w", i+1, ctx.Err())
				break
			}
			// A batch that did not finish (a held line, say) is a failed
			// batch; the soak goes on with the next, unless three in a
			// row fail.
			b.Problems = fmt.Sprintf("did not finish: %v (data kept in %s)", err, filepath.Join(o.Data, fmt.Sprintf("batch-%03d", i+1)))
			if failedInARow++; failedInARow == 3 {
				runErr = fmt.Errorf("soak: three batches in a row did not finish; the last: %w", err)
			}
		} else {
			failedInARow = 0
		}
		// Idle: let the closed line's goroutines finish (a bounded wait
		// for the count to come down to the last idle one, not a timing).
		want := rep.Start.Goroutines + 1 // the sampler, started since
		if len(rep.Batches) > 0 {
			want = rep.Batches[0].Idle.Goroutines
		}
		settle(want)
		b.Idle = footprint()
		rep.Batches = append(rep.Batches, b)
		progress(fmt.Sprintf("batch %d %s: %d units, invariants %t, ground truth %t, misses %d, verdict p99 %.2f ms; running: median goroutines %d, open files %d, peak heap %.0f MB, RSS %.0f MB; idle after: live heap %.1f MB, RSS %.1f MB, goroutines %d, open files %d",
			i+1, b.Batch, b.Units, b.InvariantsOK, b.GroundTruthOK, b.DeadlineMisses, b.P99ms, b.MedianGoroutines, b.MedianFDs, b.PeakHeapMB, b.PeakRSSMB,
			b.Idle.HeapMB, b.Idle.RSSMB, b.Idle.Goroutines, b.Idle.FDs))
		if b.Problems != "" {
			progress(fmt.Sprintf("batch %d: %s", i+1, b.Problems))
		}
		if runErr != nil {
			break
		}
	}
	stopSampling()
	wg.Wait()

	rep.Samples = s.samples
	res.Elapsed = time.Since(start).Seconds()
	judge(rep, o.Rate, cfg)
	if runErr != nil {
		res.Failures = append(res.Failures, runErr.Error())
	}
	return rep, nil
}

// runBatch runs one batch of units on a fresh demo line, the sampler
// following its controller.
func runBatch(ctx context.Context, o demo.Options, wire demo.Wire, i, units int, s *sampler) (Batch, error) {
	o.Units = units
	o.Seed += uint64(i)
	o.Data = filepath.Join(o.Data, fmt.Sprintf("batch-%03d", i+1))
	keep := true // a batch that did not reconcile keeps its data directory
	defer func() {
		if !keep {
			os.RemoveAll(o.Data)
		}
	}()
	d, err := demo.Start(ctx, o, wire)
	if err != nil {
		return Batch{}, err
	}
	defer d.Close()
	t0, cpu0 := time.Now(), demo.CPUTime()
	if err := d.StartBatch(ctx); err != nil {
		return Batch{}, err
	}
	batch := d.Setup().Batch.Batch
	b := Batch{Batch: batch, Units: units}
	// Units fed: the simulated PLC's item counter when the simulator runs
	// here, else the triggers the controller counted (the PLC's item
	// counter as the controller read it).
	fed := func() uint32 { return uint32(d.Snapshot().Counters.Triggered) }
	if sm := d.Sim(); sm != nil {
		fed = func() uint32 { return sm.PLC().ItemCounter }
	}
	s.follow(d.Line(), batch, fed)
	defer s.follow(nil, "", nil)
	// Once the simulator's units have all left the line, the windows no
	// longer see the rate: stop following (the batch's own figures come
	// from its report).
	simDone := make(chan struct{})
	defer close(simDone)
	go func() {
		select {
		case <-d.SimDone():
			s.follow(nil, "", nil)
		case <-simDone:
		}
	}()
	if err := d.Commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		return b, err
	}
	if err := d.Finish(ctx); err != nil {
		return b, err
	}
	s.follow(nil, "", nil)
	run := s.running(batch)
	r, err := d.Report(context.WithoutCancel(ctx), time.Since(t0), demo.CPUTime()-cpu0)
	if err != nil {
		return b, err
	}
	b = Batch{Batch: r.Batch, Units: r.Units, InvariantsOK: r.InvariantsOK, GroundTruthOK: r.GroundTruthOK, DeadlineMisses: r.DeadlineMisses, Simulator: r.Simulator,
		Verdicts: r.Latency.Verdicts, P50ms: r.Latency.P50ms, P99ms: r.Latency.P99ms, MaxMs: r.Latency.MaxMs,
		MedianGoroutines: run.Goroutines, MedianFDs: run.FDs, PeakHeapMB: run.HeapMB, PeakRSSMB: run.RSSMB, Seconds: r.WallSeconds}
	var probs []string
	probs = append(probs, r.Invariants...)
	probs = append(probs, r.GroundTruth...)
	if len(probs) > 3 {
		probs = append(probs[:3], fmt.Sprintf("… %d more", len(probs)-3))
	}
	b.Problems = strings.Join(probs, "; ")
	keep = !(b.InvariantsOK && b.GroundTruthOK)
	if keep {
		b.Problems += " (data kept in " + o.Data + ")"
	}
	return b, nil
}

// sampler takes a sample every interval of the line it follows.
type sampler struct {
	start    time.Time
	interval time.Duration
	progress func(string)

	mu      sync.Mutex
	l       *line.Line
	fed     func() uint32 // the simulated line's units put on the belt
	batch   string
	changed bool // the line followed changed since the last sample
	samples []Sample
	prev    line.Histogram
	prevFed uint32
	last    time.Time
}

func (s *sampler) follow(l *line.Line, batch string, fed func() uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == l {
		return
	}
	s.l, s.batch, s.fed, s.changed = l, batch, fed, true
	s.prev = line.Histogram{}
	s.prevFed = 0
	if fed != nil {
		s.prevFed = fed()
	}
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.mu.Lock()
	s.last = time.Now()
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sm := s.take(now)
			s.progress(fmt.Sprintf("t=%4.0fs %-26s fed %5d, %5d verdicts %7.0f/min p50 %6.2f p99 %6.2f max %7.2f ms  heap %6.1f MB  RSS %6.1f MB  goroutines %4d  open files %3d",
				sm.At, sm.Batch, sm.Fed, sm.Verdicts, sm.PerMin, sm.P50ms, sm.P99ms, sm.MaxMs, sm.HeapMB, sm.RSSMB, sm.Goroutines, sm.FDs))
		}
	}
}

func (s *sampler) take(now time.Time) Sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := Sample{At: now.Sub(s.start).Seconds(), Batch: s.batch, HeapMB: mb(ms.HeapAlloc), HeapSysMB: mb(ms.HeapSys),
		RSSMB: rssMB(), Goroutines: runtime.NumGoroutine(), FDs: openFiles()}
	sm.Full = s.l != nil && !s.changed
	if s.l != nil {
		h := s.l.Histograms(bounds)["total"]
		if h.Count < s.prev.Count { // a new batch on the same line: counters restart
			s.prev = line.Histogram{}
		}
		win := diff(h, s.prev)
		sm.Verdicts = int(win.Count)
		sm.P50ms, sm.P99ms, sm.MaxMs = quantile(win, 0.50), quantile(win, 0.99), quantile(win, 1)
		if s.fed != nil {
			f := s.fed()
			sm.Fed = int(f - s.prevFed)
			s.prevFed = f
		}
		if d := now.Sub(s.last).Minutes(); d > 0 {
			sm.PerMin = float64(win.Count) / d
			sm.FedPerMin = float64(sm.Fed) / d
		}
		s.prev = h
	}
	s.changed = false
	s.last = now
	s.samples = append(s.samples, sm)
	return sm
}

// running is batch's samples: the median goroutines and open files, the
// highest heap and RSS.
func (s *sampler) running(batch string) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p Sample
	var gs, fds []float64
	for _, sm := range s.samples {
		if sm.Batch != batch {
			continue
		}
		p.HeapMB = max(p.HeapMB, sm.HeapMB)
		p.RSSMB = max(p.RSSMB, sm.RSSMB)
		gs = append(gs, float64(sm.Goroutines))
		fds = append(fds, float64(sm.FDs))
	}
	p.Goroutines, p.FDs = int(median(gs)), int(median(fds))
	return p
}

// diff is the window's histogram: h minus the previous one (cumulative
// counts per bound, same bounds).
func diff(h, prev line.Histogram) line.Histogram {
	out := line.Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - prev.Count, SumMs: h.SumMs - prev.SumMs}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(prev.Counts) {
			out.Counts[i] -= prev.Counts[i]
		}
	}
	return out
}

// quantile is the bound of the first bucket holding the q-th verdict
// (q = 1: the slowest); +Inf past the last bound, 0 with none.
func quantile(h line.Histogram, q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	rank = max(rank, 1)
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

func mb(b uint64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// footprint is the process now, after a forced GC and the free memory
// returned to the OS.
func footprint() Process {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) > 3 {
		f = f[:3]
	}
	return Process{HeapMB: mb(ms.HeapAlloc), RSSMB: rssMB(), Goroutines: runtime.NumGoroutine(), FDs: openFiles(), Load: strings.Join(f, " ")}
}

// settle waits (up to a minute) for the goroutines to come down to want:
// the closed line's last goroutines finishing. The simulator's OPC UA
// servers (gopcua v0.8.0) leave their subscriptions' goroutines running
// after Close until the subscription's lifetime runs out, holding the
// closed simulator (≈ 110 MB); seen to take over 10 s on a loaded machine.
func settle(want int) {
	deadline := time.Now().Add(time.Minute)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		<-t.C
	}
}

// rssMB is the resident set (VmRSS of /proc/self/status); 0 where there
// is none.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0
			}
			return math.Round(kb/1024*10) / 10
		}
	}
	return 0
}

// openFiles counts /proc/self/fd (-1 where there is none).
func openFiles() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es) - 1 // the directory being read
}

// judge turns the batches and samples into the result's rows, figures
// and failures.
func judge(rep *Report, rate float64, cfg Config) {
	res := &rep.Result
	th := Thresholds
	bs := rep.Batches
	units, misses, verdicts, ok := 0, 0, 0, 0
	var bad []string
	for _, b := range bs {
		units += b.Units
		misses += b.DeadlineMisses
		verdicts += b.Verdicts
		if b.InvariantsOK && b.GroundTruthOK {
			ok++
		} else {
			bad = append(bad, fmt.Sprintf("batch %s: %s", b.Batch, b.Problems))
		}
	}
	res.Failures = append(res.Failures, bad...)
	if misses > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d of %d verdicts missed their deadline (a timing: see the machine's load in the figures)", misses, verdicts))
	}
	res.Rows = append(res.Rows,
		campaign.Row{What: fmt.Sprintf("batches of ≤ %d units at %g/min, one after another (each a fresh simulated line, controller and ledger)", cfg.BatchUnits, rate), Tries: len(bs), Survived: ok, Failed: len(bs) - ok,
			Checks: "the ledger's invariants (verify) and the simulator's ground truth, unit by unit"},
		campaign.Row{What: "verdicts within the deadline (camera result → PLC before the reject gate)", Tries: verdicts, Survived: verdicts - misses, Failed: misses,
			Checks: "no deadline miss", Notes: "timing: the machine's load is in the figures"})
	row := func(what string, first, last float64, limit float64, unit, checks string) {
		if unit != "" {
			unit = " " + unit
		}
		r := campaign.Row{What: what, Tries: 1, Checks: checks,
			Notes: fmt.Sprintf("first %g%s, last %g%s (limit %g%s)", first, unit, last, unit, limit, unit)}
		if last <= limit {
			r.Survived = 1
		} else {
			r.Failed = 1
			res.Failures = append(res.Failures, fmt.Sprintf("%s: %g%s at the end, over the limit %g%s (first %g%s)", what, last, unit, limit, unit, first, unit))
		}
		res.Rows = append(res.Rows, r)
	}
	if len(bs) >= 2 {
		f, l := bs[0], bs[len(bs)-1]
		n := len(bs)
		row(fmt.Sprintf("goroutines with no line running, after batch 1 and after batch %d", n), float64(f.Idle.Goroutines), float64(l.Idle.Goroutines),
			float64(f.Idle.Goroutines+th.IdleGoroutines), "", fmt.Sprintf("last ≤ first + %d", th.IdleGoroutines))
		row(fmt.Sprintf("open files with no line running, after batch 1 and after batch %d", n), float64(f.Idle.FDs), float64(l.Idle.FDs),
			float64(f.Idle.FDs+th.IdleFDs), "", fmt.Sprintf("last ≤ first + %d", th.IdleFDs))
		row(fmt.Sprintf("live heap with no line running (forced GC), after batch 1 and after batch %d", n), f.Idle.HeapMB, l.Idle.HeapMB,
			round1(max(f.Idle.HeapMB*(1+th.HeapFrac), f.Idle.HeapMB+th.HeapSlackMB)), "MB",
			fmt.Sprintf("last ≤ first + max(%g%%, %g MB)", th.HeapFrac*100, th.HeapSlackMB))
		row(fmt.Sprintf("resident memory with no line running (free memory returned to the OS), after batch 1 and after batch %d", n), f.Idle.RSSMB, l.Idle.RSSMB,
			round1(max(f.Idle.RSSMB*(1+th.RSSFrac), f.Idle.RSSMB+th.RSSSlackMB)), "MB",
			fmt.Sprintf("last ≤ first + max(%g%%, %g MB)", th.RSSFrac*100, th.RSSSlackMB))
		row(fmt.Sprintf("goroutines while the line runs (median of the samples), batch 1 and batch %d", n), float64(f.MedianGoroutines), float64(l.MedianGoroutines),
			float64(f.MedianGoroutines+th.RunGoroutines), "", fmt.Sprintf("last ≤ first + %d", th.RunGoroutines))
		row(fmt.Sprintf("open files while the line runs (median of the samples), batch 1 and batch %d", n), float64(f.MedianFDs), float64(l.MedianFDs),
			float64(f.MedianFDs+th.RunFDs), "", fmt.Sprintf("last ≤ first + %d", th.RunFDs))
	} else {
		res.Failures = append(res.Failures, fmt.Sprintf("only %d batch ran: growth from batch to batch is not judged (run longer)", len(bs)))
	}
	// Throughput of the full windows (inside one running batch).
	var full []Sample
	for _, sm := range rep.Samples {
		if sm.Full && sm.Verdicts > 0 {
			full = append(full, sm)
		}
	}
	if len(full) > 0 {
		// The controller keeps up when it decides, window by window, what
		// the line feeds it (a few units in flight at the window's edges;
		// units lost on the way get no camera result): ±5%, and at least
		// ±3 units.
		off := 0
		for _, sm := range full {
			lo, hi := min(float64(sm.Fed)*th.ThroughputLow, float64(sm.Fed)-3), max(float64(sm.Fed)*th.ThroughputHigh, float64(sm.Fed)+3)
			if v := float64(sm.Verdicts); v < lo || v > hi {
				off++
			}
		}
		r := campaign.Row{What: fmt.Sprintf("sampling windows of %s inside a running batch", cfg.Interval), Tries: len(full), Survived: len(full) - off, Failed: off,
			Checks: fmt.Sprintf("verdicts in the window within %.0f–%.0f%% of the units the line fed (±3)", th.ThroughputLow*100, th.ThroughputHigh*100)}
		res.Rows = append(res.Rows, r)
		if r.Failed > 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("%d of %d windows: verdicts outside %.0f–%.0f%% of the units fed", r.Failed, len(full), th.ThroughputLow*100, th.ThroughputHigh*100))
		}
	}
	fig := func(name, format string, args ...any) {
		res.Figures = append(res.Figures, campaign.Figure{Name: name, Value: fmt.Sprintf(format, args...)})
	}
	fig("run", "%s at %g units/min: %d batches, %d units, %d verdicts, sampled every %s; %.0f s in all", span(cfg), rate, len(bs), units, verdicts, cfg.Interval, res.Elapsed)
	st := rep.Start
	endLoad := st.Load
	if len(bs) > 0 {
		endLoad = bs[len(bs)-1].Idle.Load
	}
	if len(bs) > 0 {
		fig("simulated line", "%s (the process figures below are the controller's%s)", bs[0].Simulator, map[bool]string{true: " and the simulator's", false: " alone"}[strings.Contains(bs[0].Simulator, "controller's process")])
	}
	fig("machine load (1, 5, 15 min) at start / end", "%s / %s (2 cores shared with other work: timings are not the controller's alone)", st.Load, endLoad)
	fig("process before the first batch", "live heap %.1f MB, RSS %.1f MB, goroutines %d, open files %d", st.HeapMB, st.RSSMB, st.Goroutines, st.FDs)
	if len(full) > 0 {
		per, fed := make([]float64, len(full)), make([]float64, len(full))
		p50s, p99s, maxs := make([]float64, len(full)), make([]float64, len(full)), make([]float64, len(full))
		for i, sm := range full {
			per[i], fed[i], p50s[i], p99s[i], maxs[i] = sm.PerMin, sm.FedPerMin, sm.P50ms, sm.P99ms, sm.MaxMs
		}
		fig("verdicts per minute per window (min / median / max)", "%.0f / %.0f / %.0f", minOf(per), median(per), maxOf(per))
		fig("units fed per minute per window (min / median / max)", "%.0f / %.0f / %.0f (set: %g; a loaded machine's simulator falls behind its rate)", minOf(fed), median(fed), maxOf(fed), rate)
		fig("verdict latency per window, median over windows (p50 / p99 / max)", "%.2f / %.2f / %.2f ms", median(p50s), median(p99s), median(maxs))
		fig("verdict latency per window, worst window (p50 / p99 / max)", "%.2f / %.2f / %.2f ms", maxOf(p50s), maxOf(p99s), maxOf(maxs))
		third := max(len(full)/3, 1)
		fig("verdict p99 per window, median of the first third / last third of the run", "%.2f / %.2f ms", median(p99s[:third]), median(p99s[len(p99s)-third:]))
	}
	for i, b := range bs {
		fig(fmt.Sprintf("batch %d (%s)", i+1, b.Batch), "%d units in %.0f s; invariants %t, ground truth %t; %d deadline misses; verdict p50 / p99 / max %.2f / %.2f / %.2f ms; running: median goroutines %d, open files %d, peak heap %.0f MB, peak RSS %.0f MB; idle after: live heap %.1f MB, RSS %.1f MB, goroutines %d, open files %d",
			b.Units, b.Seconds, b.InvariantsOK, b.GroundTruthOK, b.DeadlineMisses, b.P50ms, b.P99ms, b.MaxMs, b.MedianGoroutines, b.MedianFDs, b.PeakHeapMB, b.PeakRSSMB,
			b.Idle.HeapMB, b.Idle.RSSMB, b.Idle.Goroutines, b.Idle.FDs)
	}
	fig("thresholds (last batch against the first)", "idle: goroutines +%d, open files +%d, live heap +max(%g%%, %g MB), RSS +max(%g%%, %g MB); running (median): goroutines +%d, open files +%d; every full window's verdicts %.0f–%.0f%% of its units fed",
		th.IdleGoroutines, th.IdleFDs, th.HeapFrac*100, th.HeapSlackMB, th.RSSFrac*100, th.RSSSlackMB, th.RunGoroutines, th.RunFDs, th.ThroughputLow*100, th.ThroughputHigh*100)
	fig("latency precision", "per-window percentiles are the upper bounds of 5%%-wide histogram buckets; per-batch ones are exact")
}

// span is how long the soak was asked to run.
func span(cfg Config) string {
	if cfg.Batches > 0 {
		return fmt.Sprintf("%d batches of %d units", cfg.Batches, cfg.BatchUnits)
	}
	return cfg.Duration.String()
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
