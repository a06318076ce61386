package hmi

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/line"
)

// /readyz and /metrics. With the multi-batch line (Config.Overview a
// *line.Line) they ask the line: Health, Histograms, LedgerStats and its
// overview's device links; with a bare runner, its snapshot and the store.

// healther is the line's readiness (line.Line.Health).
type healther interface {
	Health(ctx context.Context) line.Health
}

// histogrammer gives verdict latency histograms by stage (line.Line and
// line.Runner).
type histogrammer interface {
	Histograms(bounds []float64) map[string]line.Histogram
}

// ledgerStatser gives the ledger's commit counters (line.Line).
type ledgerStatser interface {
	LedgerStats() aggregation.Stats
}

// ready checks the devices' links and the ledger.
func (s *Server) ready(ctx context.Context) Health {
	h := Health{OK: true, Problems: map[string]string{}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if lh, ok := s.cfg.Overview.(healther); ok {
		for _, p := range lh.Health(ctx).Problems {
			k, v, found := strings.Cut(p, ": ")
			if !found {
				k, v = "line", p
			}
			if k != "ledger" {
				k = "device/" + k
			}
			h.Problems[k] = v
		}
	} else {
		snap := s.cfg.Line.Snapshot()
		for d, f := range snap.Faults {
			h.Problems["device/"+d] = f
		}
		if l, ok := s.cfg.Line.(Linker); ok {
			for _, k := range l.Links() {
				if !k.Up {
					h.Problems["device/"+k.Device] = "not linked " + k.Fault
				}
			}
		}
	}
	// Writable: the line only reads the ledger (a probe must not journal);
	// a store that can tell whether a write would succeed is asked too.
	if w, ok := any(s.cfg.Store).(Writable); ok {
		if err := w.Writable(ctx); err != nil {
			h.Problems["ledger"] = err.Error()
		}
	} else if _, ok := s.cfg.Overview.(healther); !ok {
		if _, err := s.cfg.Store.Pools(ctx); err != nil {
			h.Problems["ledger"] = err.Error()
		}
	}
	h.OK = len(h.Problems) == 0
	if h.OK {
		h.Problems = nil
	}
	return h
}

// metrics reads the line, its stats and the ledger at each scrape.
type metrics struct{ s *Server }

var (
	mVerdicts = prometheus.NewDesc("tracline_verdicts_total", "Units decided in the current (or last) batch, by outcome and reject reason.", []string{"outcome", "reason"}, nil)
	mLatency  = prometheus.NewDesc("tracline_verdict_latency_seconds", "Verdict latency by stage, current (or last) batch (total: camera result → verdict written; camera: trigger → camera result; queue, journal, plc; controller: queue + plc).", []string{"stage"}, nil)
	mMisses   = prometheus.NewDesc("tracline_verdict_deadline_misses_total", "Verdicts written after the unit's deadline.", nil, nil)
	mLink     = prometheus.NewDesc("tracline_device_up", "1 if the device is linked and not faulted.", []string{"device"}, nil)
	mAge      = prometheus.NewDesc("tracline_device_last_message_age_seconds", "Age of the device's last message (absent: none yet).", []string{"device"}, nil)
	mCommit   = prometheus.NewDesc("tracline_ledger_commit_seconds", "Ledger group commits (synced transactions): count and total time (sum/count = mean commit latency).", nil, nil)
	mCommitRq = prometheus.NewDesc("tracline_ledger_commit_requests_total", "Write requests the ledger's group commits carried.", nil, nil)
	mPool     = prometheus.NewDesc("tracline_pool_codes_available", "Codes left in each pool.", []string{"pool"}, nil)
	mState    = prometheus.NewDesc("tracline_line_state", "The line's PackML state (1 for the current one).", []string{"state"}, nil)
)

// latencyBounds are the histogram's bounds in ms (Prometheus gets seconds).
var latencyBounds = line.DefaultLatencyBounds

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mVerdicts, mLatency, mMisses, mLink, mAge, mCommit, mCommitRq, mPool, mState} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	cfg := m.s.cfg
	snap := cfg.Line.Snapshot()
	ch <- prometheus.MustNewConstMetric(mState, prometheus.GaugeValue, 1, snap.State)
	ch <- prometheus.MustNewConstMetric(mVerdicts, prometheus.CounterValue, float64(snap.Counters.Passed), "pass", "")
	for r, n := range snap.Counters.RejectReason {
		ch <- prometheus.MustNewConstMetric(mVerdicts, prometheus.CounterValue, float64(n), "reject", r)
	}
	st := cfg.Line.Stats()
	ch <- prometheus.MustNewConstMetric(mMisses, prometheus.CounterValue, float64(st.DeadlineMisses))

	var hs map[string]line.Histogram
	if h, ok := cfg.Overview.(histogrammer); ok {
		hs = h.Histograms(latencyBounds)
	} else if h, ok := cfg.Line.(histogrammer); ok {
		hs = h.Histograms(latencyBounds)
	}
	stages := make([]string, 0, len(hs))
	for s := range hs {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, stage := range stages {
		h := hs[stage]
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b/1000] = h.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(mLatency, h.Count, h.SumMs/1000, buckets, stage)
	}

	if cfg.Overview != nil {
		for _, d := range cfg.Overview.Snapshot().Devices {
			ch <- prometheus.MustNewConstMetric(mLink, prometheus.GaugeValue, b2f(d.Link == "up" && d.Error == ""), d.Name)
			if d.AgeMs >= 0 {
				ch <- prometheus.MustNewConstMetric(mAge, prometheus.GaugeValue, float64(d.AgeMs)/1000, d.Name)
			}
		}
	} else if l, ok := cfg.Line.(Linker); ok {
		for _, k := range l.Links() {
			ch <- prometheus.MustNewConstMetric(mLink, prometheus.GaugeValue, b2f(k.Up && k.Fault == ""), k.Device)
		}
	} else {
		for d := range snap.Faults {
			ch <- prometheus.MustNewConstMetric(mLink, prometheus.GaugeValue, 0, d)
		}
	}

	var cs aggregation.Stats
	if l, ok := cfg.Overview.(ledgerStatser); ok {
		cs = l.LedgerStats()
	} else {
		cs = cfg.Store.Stats()
	}
	ch <- prometheus.MustNewConstSummary(mCommit, cs.Groups, cs.CommitTime.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(mCommitRq, prometheus.CounterValue, float64(cs.Requests))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if pools, err := cfg.Store.Pools(ctx); err == nil {
		for _, p := range pools {
			ch <- prometheus.MustNewConstMetric(mPool, prometheus.GaugeValue, float64(p.Available), p.Pool)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
