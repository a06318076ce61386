package hmi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
)

// The engineer's screen: the configuration as loaded, the live signal
// monitor, test actions (refused while a batch runs), the verdict-latency
// histogram by stage and the devices' round-trip figures.

// Engineer is the line's engineering access; *line.Line satisfies it. The
// server finds it on Config.Overview by type assertion (no other setting):
// without it the engineer's routes answer 503 "unavailable".
type Engineer interface {
	LoadedConfig() line.LoadedConfig
	Monitor(ctx context.Context) (line.Monitor, error)
	TestAction(ctx context.Context, a line.TestAction, user string) (string, error)
	Histograms(bounds []float64) map[string]line.Histogram
}

var (
	// engineerViewers see the engineer's screen.
	// Not the inspector: the page polls twice a second, and every call an
	// inspector makes is journaled; the devices are no traceability data.
	engineerViewers = []accounts.Role{accounts.RoleEngineer, accounts.RoleAdmin}
	// engineers carry out test actions.
	engineers = []accounts.Role{accounts.RoleEngineer}
)

// histogramStages is the order the stages are shown in.
var histogramStages = []string{"total", "camera", "queue", "journal", "plc", "controller"}

// EngineerDoc is GET /api/v1/engineer.
type EngineerDoc struct {
	Config line.LoadedConfig `json:"config"`
	// Busy: a batch is open, test actions are refused.
	Busy  bool   `json:"busy"`
	Batch string `json:"batch,omitempty"`
	State string `json:"state"`
	// Histograms: the verdicts' latency by stage, current (or last) batch.
	Histograms []StageHistogram `json:"histograms"`
	// RoundTrip: the devices' round trips, from the verdicts measured.
	RoundTrip []RoundTrip `json:"round_trip"`
	// Devices: each device's link and the age of its last message.
	Devices []line.DeviceView `json:"devices"`
}

// StageHistogram is one stage's verdict latency histogram.
type StageHistogram struct {
	Stage   string   `json:"stage"`
	Count   uint64   `json:"count"`
	SumMs   float64  `json:"sum_ms"`
	Buckets []Bucket `json:"buckets"` // not cumulative; the last is "+Inf"
}

// Bucket counts the verdicts that took more than the previous bound and at
// most Le ms.
type Bucket struct {
	Le string `json:"le"`
	N  uint64 `json:"n"`
}

// RoundTrip is one device's round trip over the verdicts measured.
type RoundTrip struct {
	Device string  `json:"device"`
	What   string  `json:"what"` // the stage measured
	N      int     `json:"n"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// MonitorDoc is GET /api/v1/engineer/monitor: the devices' live values.
type MonitorDoc struct {
	line.Monitor
	At    time.Time `json:"at"`
	Busy  bool      `json:"busy"`
	Batch string    `json:"batch,omitempty"`
	// Error: the devices could not be read (the last values are not kept).
	Error string `json:"error,omitempty"`
}

// TestReq is an engineer's test action; the engineer is the logged-in user.
type TestReq struct {
	Kind   string `json:"kind"`             // output, print, camera
	Output string `json:"output,omitempty"` // output: the signal's name
	Value  int    `json:"value,omitempty"`  // output: the value
	Text   string `json:"text,omitempty"`   // print: the test text
	Device string `json:"device,omitempty"` // camera: which one ("" the unit camera)
}

// TestDoc answers a test action.
type TestDoc struct {
	Kind   string  `json:"kind"`
	Result string  `json:"result"`
	TookMs float64 `json:"took_ms"`
}

// monitorCache shares one device read between the engineers' pages (each
// polls about twice a second): at most one read per monitorMaxAge.
type monitorCache struct {
	mu  sync.Mutex
	at  time.Time
	doc MonitorDoc
}

const monitorMaxAge = 200 * time.Millisecond

func (s *Server) engineer() (Engineer, error) {
	if e, ok := s.cfg.Overview.(Engineer); ok && e != nil {
		return e, nil
	}
	return nil, fail(http.StatusServiceUnavailable, "unavailable", "no engineering access to the line (hmi.Config.Overview is not a line.Line)")
}

// busy says whether a batch is open, and which.
func (s *Server) busy() (bool, string, string) {
	if s.cfg.Overview != nil {
		o := s.cfg.Overview.Snapshot()
		b := ""
		if o.Batch != nil {
			b = o.Batch.ID
		}
		return !o.Ready, b, o.State
	}
	snap := s.cfg.Line.Snapshot()
	return true, s.cfg.Batch, snap.State
}

func (s *Server) engineerRoutes() []Route {
	mc := &monitorCache{}
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/engineer", Roles: engineerViewers, Tag: "engineer",
			Summary:  "The engineer's view: the configuration as loaded, the verdict-latency histogram by stage, device round trips and links",
			Response: EngineerDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				e, err := s.engineer()
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, s.engineerDoc(e))
			}},
		{Method: http.MethodGet, Path: "/api/v1/engineer/monitor", Roles: engineerViewers, Tag: "engineer",
			Summary:  "Every mapped PLC signal with its value and age, the printer's buffer, the cameras' counters (read at most 5 times a second)",
			Response: MonitorDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				e, err := s.engineer()
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, mc.read(c.Request().Context(), s, e))
			}},
		{Method: http.MethodPost, Path: "/api/v1/engineer/test", Roles: engineers, Tag: "engineer",
			Summary: "A test action (output: write a value to a PLC output; print: a test text on the coding printer; camera: read once); refused (409) while a batch is open; journaled with the user",
			Request: TestReq{}, Response: TestDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req TestReq
				if err := decode(c, &req); err != nil {
					return err
				}
				a, err := testAction(req)
				if err != nil {
					return err
				}
				e, err := s.engineer()
				if err != nil {
					return err
				}
				start := time.Now()
				out, err := e.TestAction(c.Request().Context(), a, u.ID)
				switch {
				case errors.Is(err, line.ErrBusy):
					return fail(http.StatusConflict, "refused", err.Error())
				case errors.Is(err, line.ErrNoEngineering):
					return fail(http.StatusServiceUnavailable, "unavailable", err.Error())
				case err != nil:
					// The device's answer (a timeout, a refused write) is the
					// engineer's information, not the server's fault.
					return fail(http.StatusBadGateway, "unavailable", err.Error())
				}
				return c.JSON(http.StatusOK, TestDoc{Kind: a.Kind, Result: out, TookMs: ms(time.Since(start))})
			}},
	}
}

// testAction checks an engineer's request: a 400 naming what is wrong.
func testAction(req TestReq) (line.TestAction, error) {
	a := line.TestAction{Kind: strings.TrimSpace(req.Kind), Output: strings.TrimSpace(req.Output), Value: req.Value,
		Text: req.Text, Device: strings.TrimSpace(req.Device)}
	if err := a.Validate(); err != nil {
		return a, fail(http.StatusBadRequest, "bad_body", err.Error())
	}
	if a.Kind == line.TestPrint && strings.TrimSpace(a.Text) == "" {
		return a, fail(http.StatusBadRequest, "bad_body", "test action print: text (the test text) is required")
	}
	if len(a.Text) > 64 {
		return a, fail(http.StatusBadRequest, "bad_body", "test action print: text is longer than 64 bytes")
	}
	if a.Value < 0 || a.Value > 65535 {
		return a, fail(http.StatusBadRequest, "bad_body", fmt.Sprintf("test action output: value %d is outside 0..65535", a.Value))
	}
	return a, nil
}

func (mc *monitorCache) read(ctx context.Context, s *Server, e Engineer) MonitorDoc {
	busy, batch, _ := s.busy()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	now := time.Now()
	if !mc.at.IsZero() && now.Sub(mc.at) < monitorMaxAge {
		doc := mc.doc
		doc.Busy, doc.Batch = busy, batch
		return doc
	}
	doc := MonitorDoc{At: s.cfg.Now(), Busy: busy, Batch: batch}
	m, err := e.Monitor(ctx)
	if err != nil {
		doc.Error = err.Error()
	} else {
		doc.Monitor = m
	}
	if doc.Signals == nil {
		doc.Signals = []line.SignalValue{}
	}
	mc.at, mc.doc = now, doc
	return doc
}

func (s *Server) engineerDoc(e Engineer) EngineerDoc {
	busy, batch, state := s.busy()
	doc := EngineerDoc{Config: e.LoadedConfig(), Busy: busy, Batch: batch, State: state,
		Histograms: stageHistograms(e.Histograms(nil)), RoundTrip: roundTrips(s.cfg.Line.Stats()), Devices: []line.DeviceView{}}
	if s.cfg.Overview != nil {
		if d := s.cfg.Overview.Snapshot().Devices; d != nil {
			doc.Devices = d
		}
	}
	return doc
}

// stageHistograms turns the line's cumulative histograms into buckets.
func stageHistograms(hs map[string]line.Histogram) []StageHistogram {
	out := []StageHistogram{}
	for _, stage := range histogramStages {
		h, ok := hs[stage]
		if !ok {
			continue
		}
		sh := StageHistogram{Stage: stage, Count: h.Count, SumMs: h.SumMs, Buckets: make([]Bucket, 0, len(h.Bounds)+1)}
		var prev uint64
		for i, b := range h.Bounds {
			sh.Buckets = append(sh.Buckets, Bucket{Le: strconv.FormatFloat(b, 'f', -1, 64), N: h.Counts[i] - prev})
			prev = h.Counts[i]
		}
		sh.Buckets = append(sh.Buckets, Bucket{Le: "+Inf", N: h.Count - prev})
		out = append(out, sh)
	}
	return out
}

// roundTrips are the devices' shares of the verdicts: the PLC's verdict
// write (plc stage) and the camera's trigger → result (camera stage).
func roundTrips(st line.StatsReport) []RoundTrip {
	out := []RoundTrip{}
	for _, d := range []struct{ device, stage, what string }{
		{"plc", "plc", "verdict write → written"},
		{"camera", "camera", "trigger → camera result"},
		{"ledger", "journal", "verdict journaled durably"},
	} {
		q, ok := st.Stages[d.stage]
		if !ok {
			continue
		}
		out = append(out, RoundTrip{Device: d.device, What: d.what, N: st.Verdicts, P50ms: finite(q[0]), P99ms: finite(q[1]),
			MaxMs: finite(st.StagesMax[d.stage])})
	}
	return out
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
