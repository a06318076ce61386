package hmi

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/tracecode"
	"github.com/tracline/tracline/tracecode/render"
)

// Health is /healthz and /readyz's answer.
type Health struct {
	OK       bool              `json:"ok"`
	Problems map[string]string `json:"problems,omitempty"`
}

// Writable is an optional ability of the ledger store: whether a durable
// write would succeed now (disk full, read-only, closed).
type Writable interface {
	Writable(ctx context.Context) error
}

func (s *Server) opsRoutes() []Route {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &metrics{s: s})
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return []Route{
		{Method: http.MethodGet, Path: "/healthz", Tag: "ops", Summary: "The process answers", Response: Health{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.JSON(http.StatusOK, Health{OK: true})
			}},
		{Method: http.MethodGet, Path: "/readyz", Tag: "ops",
			Summary: "Ready: every device linked and the ledger writable (503 with the problems otherwise)", Response: Health{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				h := s.ready(c.Request().Context())
				code := http.StatusOK
				if !h.OK {
					code = http.StatusServiceUnavailable
				}
				return c.JSON(code, h)
			}},
		{Method: http.MethodGet, Path: "/metrics", Tag: "ops", ContentType: "text/plain",
			Summary: "Prometheus metrics", Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				prom.ServeHTTP(c.Response(), c.Request())
				return nil
			}},
		{Method: http.MethodGet, Path: "/api/v1/openapi.json", Tag: "ops", Summary: "This document", Response: map[string]any{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.Blob(http.StatusOK, "application/json", s.openapi)
			}},
		{Method: http.MethodGet, Path: "/api/v1/codes/:code/barcode.png", Roles: anyone, Tag: "codes", ContentType: "image/png",
			Summary:  "A code's barcode: GS1 DataMatrix (SGTIN), GS1-128 (SSCC), Code 128 (NMPA 20 digits); the code URL-escaped in any scanned form",
			Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				p, err := tracecode.Parse(c.Param("code"))
				if err != nil {
					return fail(http.StatusBadRequest, "bad_code", err.Error())
				}
				var rule tracecode.Rule
				switch p.Scheme {
				case tracecode.SchemeGS1SGTIN:
					rule.Carrier = tracecode.CarrierGS1DataMatrix
				case tracecode.SchemeGS1SSCC:
					rule.Carrier = tracecode.CarrierGS1128
				default:
					rule.Carrier = tracecode.CarrierCode128
				}
				var buf bytes.Buffer
				if err := render.PNG(&buf, &p, rule, render.Options{}); err != nil {
					return fail(http.StatusBadRequest, "bad_code", err.Error())
				}
				c.Response().Header().Set("Cache-Control", "private, max-age=3600")
				return c.Blob(http.StatusOK, "image/png", buf.Bytes())
			}},
	}
}

// ready checks the devices' links and the ledger.
func (s *Server) ready(ctx context.Context) Health {
	h := Health{OK: true, Problems: map[string]string{}}
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
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if w, ok := any(s.cfg.Store).(Writable); ok {
		if err := w.Writable(ctx); err != nil {
			h.Problems["ledger"] = err.Error()
		}
	} else if _, err := s.cfg.Store.Pools(ctx); err != nil {
		h.Problems["ledger"] = err.Error()
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
	mVerdicts = prometheus.NewDesc("tracline_verdicts_total", "Units decided, by outcome and reject reason.", []string{"outcome", "reason"}, nil)
	mStage    = prometheus.NewDesc("tracline_verdict_latency_ms", "Verdict latency by stage (the runner's p50/p99 since start).", []string{"stage", "quantile"}, nil)
	mMisses   = prometheus.NewDesc("tracline_verdict_deadline_misses_total", "Verdicts written after the unit's deadline.", nil, nil)
	mLink     = prometheus.NewDesc("tracline_device_up", "1 if the device is linked and not faulted.", []string{"device"}, nil)
	mCommit   = prometheus.NewDesc("tracline_ledger_commit_seconds", "Ledger group commits: count and total time (sum/count = mean).", nil, nil)
	mPool     = prometheus.NewDesc("tracline_pool_codes_available", "Codes left in each pool.", []string{"pool"}, nil)
	mState    = prometheus.NewDesc("tracline_line_state", "The line's PackML state (1 for the current one).", []string{"state"}, nil)
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mVerdicts, mStage, mMisses, mLink, mCommit, mPool, mState} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	snap := m.s.cfg.Line.Snapshot()
	ch <- prometheus.MustNewConstMetric(mState, prometheus.GaugeValue, 1, snap.State)
	ch <- prometheus.MustNewConstMetric(mVerdicts, prometheus.CounterValue, float64(snap.Counters.Passed), "pass", "")
	for r, n := range snap.Counters.RejectReason {
		ch <- prometheus.MustNewConstMetric(mVerdicts, prometheus.CounterValue, float64(n), "reject", r)
	}
	st := m.s.cfg.Line.Stats()
	ch <- prometheus.MustNewConstMetric(mMisses, prometheus.CounterValue, float64(st.DeadlineMisses))
	for stage, q := range st.Stages {
		ch <- prometheus.MustNewConstMetric(mStage, prometheus.GaugeValue, q[0], stage, "0.5")
		ch <- prometheus.MustNewConstMetric(mStage, prometheus.GaugeValue, q[1], stage, "0.99")
	}
	if l, ok := m.s.cfg.Line.(Linker); ok {
		for _, k := range l.Links() {
			ch <- prometheus.MustNewConstMetric(mLink, prometheus.GaugeValue, b2f(k.Up && k.Fault == ""), k.Device)
		}
	} else {
		for d := range snap.Faults {
			ch <- prometheus.MustNewConstMetric(mLink, prometheus.GaugeValue, 0, d)
		}
	}
	cs := m.s.cfg.Store.Stats()
	ch <- prometheus.MustNewConstSummary(mCommit, cs.Groups, cs.CommitTime.Seconds(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if pools, err := m.s.cfg.Store.Pools(ctx); err == nil {
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
