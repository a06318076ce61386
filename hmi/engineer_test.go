package hmi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// fakeEngineering is the wiring's engineering access: three PLC signals
// whose values move with every read, a printer buffer, camera counters;
// test actions are recorded.
type fakeEngineering struct {
	mu    sync.Mutex
	reads int
	tests []line.TestAction
}

func (f *fakeEngineering) Monitor(ctx context.Context) (line.Monitor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return line.Monitor{
		Signals: []line.SignalValue{
			{Name: "trigger", Address: "HR 30001", Value: fmt.Sprint(f.reads), AgeMs: 4},
			{Name: "reject", Address: "coil 3", Value: "0", AgeMs: 12},
			{Name: "tower_light", Address: "HR 40010", Value: "amber", AgeMs: -1},
		},
		Printer: map[string]string{"buffer": "8", "printed": "120"},
		Cameras: map[string]string{"camera.reads": "118", "camera.no_reads": "2"},
	}, nil
}

func (f *fakeEngineering) Test(ctx context.Context, a line.TestAction) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tests = append(f.tests, a)
	return "done: " + a.Kind, nil
}

func (f *fakeEngineering) DeviceConfig() []line.DeviceConfig {
	return []line.DeviceConfig{
		{Name: "plc", Kind: "plc", Driver: "modbus", Endpoint: "127.0.0.1:1502",
			Settings: []line.Setting{{Key: "signals.trigger", Value: "HR 30001"}, {Key: "signals.reject", Value: "coil 3"}}},
		{Name: "printer", Kind: "printer", Driver: "opcua", Endpoint: "opc.tcp://127.0.0.1:4841"},
		{Name: "camera", Kind: "camera", Driver: "opcua", Endpoint: "opc.tcp://127.0.0.1:4842"},
	}
}

func (f *fakeEngineering) testsDone() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tests)
}

// lineRig is a rig serving the multi-batch line with engineering access.
type lineRig struct {
	*rig
	line *line.Line
	eng  *fakeEngineering
	pr   *fakePrinter
}

func newLineRig(t testing.TB) *lineRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	store, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../examples/amoxicillin-gs1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := tracecode.ParseProduct("amoxicillin-gs1.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile("../examples/amoxicillin-nmpa20.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nmpa, err := tracecode.ParseProduct("amoxicillin-nmpa20.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	pr := &fakePrinter{sent: make(chan tracecode.Code, 1<<16)}
	eng := &fakeEngineering{}
	l, err := line.NewLine(ctx, line.LineConfig{Line: "L1",
		Machine:  line.Config{Deadline: 2 * time.Second, PrinterBuffer: 4, AllocChunk: 16},
		Products: map[string]*tracecode.Product{"amox": prod, "amox-nmpa": nmpa},
		Devices:  line.Devices{PLC: fakePLC{}, Printer: pr},
		BatchDevices: func(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
			cs, err := line.NewPoolSource(prod, store, spec.ID) // batches here are GS1
			return line.Devices{Codes: cs}, err
		}, Engineering: eng, IOTimeout: time.Second}, store, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	acc, err := accounts.Open(ctx, accounts.Config{Params: accounts.Params{Time: 1, Memory: 64, Threads: 1}, Demo: true},
		accounts.Ledger(store), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hmi.New(hmi.Config{Store: store, Line: l.RunnerView(), Overview: l, Accounts: acc, Demo: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() { srv.Run(ctx); close(hubDone) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		cancel()
		<-hubDone
		if err := <-done; err != nil {
			t.Errorf("line: %v", err)
		}
		store.Close()
	})
	rg := &rig{t: t, store: store, acc: acc, srv: srv, ts: ts, printer: pr}
	rg.router = rg.openAPIRouter()
	return &lineRig{rig: rg, line: l, eng: eng, pr: pr}
}

// startBatch starts a batch from a work order and runs it (reset, start).
func (lr *lineRig) startBatch(id string) {
	lr.t.Helper()
	ctx := context.Background()
	if _, err := lr.line.StartBatch(ctx, line.WorkOrder{Product: "amox", Batch: id, ProductionDate: "2026-11-01",
		Expiry: "2028-10-31", Planned: 1000, Levels: 1}, "operator"); err != nil {
		lr.t.Fatal(err)
	}
	for _, c := range []line.Command{line.CmdReset, line.CmdStart} {
		if err := lr.line.Command(ctx, c, "operator"); err != nil {
			lr.t.Fatalf("%s: %v", c, err)
		}
	}
}

// produce runs n good units down the line and waits until they are decided.
func (lr *lineRig) produce(n int) {
	lr.t.Helper()
	before := lr.line.Stats().Verdicts
	for range n {
		var code tracecode.Code
		select {
		case code = <-lr.pr.sent:
		case <-time.After(10 * time.Second):
			lr.t.Fatal("no code reached the printer")
		}
		lr.item++
		now := line.Stamp{T: time.Now()}
		lr.line.Post(line.Trigger{Stamp: now, Item: lr.item})
		lr.line.Post(line.Printed{Stamp: now, Code: code})
		lr.line.Post(line.CameraResult{Stamp: now, Item: lr.item, Reads: []line.Read{{Code: code}}, Grade: 'A', Pass: true})
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for lr.line.Stats().Verdicts < before+n {
		if time.Now().After(deadline) {
			lr.t.Fatalf("%d verdicts, want %d", lr.line.Stats().Verdicts, before+n)
		}
		<-tick.C
	}
}

func getJSON[T any](t testing.TB, c *client, path string) T {
	t.Helper()
	code, b := c.do(http.MethodGet, path, "")
	var v T
	if err := json.Unmarshal(b, &v); code != 200 || err != nil {
		t.Fatalf("GET %s: HTTP %d %v %.300s", path, code, err, b)
	}
	return v
}

// TestEngineer: the configuration as loaded, the live monitor, test actions
// accepted with no batch and refused (in words, nothing carried out) while
// one runs; the histogram and round trips once units were decided.
func TestEngineer(t *testing.T) {
	lr := newLineRig(t)
	eng := lr.login("engineer", "demo")

	doc := getJSON[hmi.EngineerDoc](t, eng, "/api/v1/engineer")
	if !doc.Config.Reported || len(doc.Config.Devices) != 3 || doc.Config.Devices[0].Endpoint != "127.0.0.1:1502" ||
		doc.Config.Machine.DeadlineMs != 2000 || doc.Busy {
		t.Fatalf("engineer doc with no batch: %+v", doc)
	}
	m1 := getJSON[hmi.MonitorDoc](t, eng, "/api/v1/engineer/monitor")
	if len(m1.Signals) != 3 || m1.Signals[0].AgeMs != 4 || m1.Printer["buffer"] != "8" || m1.Cameras["camera.reads"] != "118" || m1.Busy {
		t.Fatalf("monitor: %+v", m1)
	}

	tests := []struct {
		name, body string
		want       int
		code       string
	}{
		{"test output", `{"kind":"output","output":"reject","value":1}`, 200, ""},
		{"test print", `{"kind":"print","text":"TEST 测试"}`, 200, ""},
		{"camera read", `{"kind":"camera"}`, 200, ""},
		{"unknown kind", `{"kind":"dance"}`, 400, "bad_body"},
		{"output without a signal", `{"kind":"output","value":1}`, 400, "bad_body"},
		{"print without text", `{"kind":"print"}`, 400, "bad_body"},
		{"print too long", `{"kind":"print","text":"` + strings.Repeat("x", 65) + `"}`, 400, "bad_body"},
	}
	for _, tc := range tests {
		head, n := lr.store.Head(), lr.eng.testsDone()
		code, b := eng.do(http.MethodPost, "/api/v1/engineer/test", tc.body)
		if code != tc.want || (tc.code != "" && errCode(t, b) != tc.code) {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, code, b, tc.want, tc.code)
		}
		if tc.want == 200 && (lr.eng.testsDone() != n+1 || lr.store.Head() == head) {
			t.Errorf("%s: carried out %d, journal %d → %d", tc.name, lr.eng.testsDone()-n, head, lr.store.Head())
		}
		if tc.want != 200 && (lr.eng.testsDone() != n || lr.store.Head() != head) {
			t.Errorf("%s: refused but carried out or journaled", tc.name)
		}
	}

	lr.startBatch("WO-ENG-1")
	lr.produce(5)
	n := lr.eng.testsDone()
	for _, l := range []string{"en", "zh"} {
		eng.lang = l
		code, b := eng.do(http.MethodPost, "/api/v1/engineer/test", `{"kind":"output","output":"reject","value":1}`)
		var e hmi.ErrorDoc
		_ = json.Unmarshal(b, &e)
		want := map[string]string{"en": "the line's state does not allow this", "zh": "产线当前状态不允许此操作"}[l]
		if code != 409 || e.Code != "refused" || !strings.Contains(e.Message, want) || !strings.Contains(e.Message, "WO-ENG-1") {
			t.Errorf("test action while a batch runs (%s): HTTP %d %s", l, code, b)
		}
	}
	eng.lang = ""
	if lr.eng.testsDone() != n {
		t.Errorf("a test action was carried out while a batch ran")
	}
	// The refusal is journaled (by the line) with the user.
	found := false
	if err := lr.store.Trail(context.Background(), "WO-ENG-1", func(ev aggregation.Event) error {
		b, _ := json.Marshal(ev)
		found = found || (strings.Contains(string(b), "test-output") && ev.Actor.ID == "engineer")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("the refused test action is not in the batch's trail with the engineer")
	}

	doc = getJSON[hmi.EngineerDoc](t, eng, "/api/v1/engineer")
	if !doc.Busy || doc.Batch != "WO-ENG-1" || len(doc.Histograms) == 0 || len(doc.RoundTrip) == 0 {
		t.Fatalf("engineer doc with a batch: %+v", doc)
	}
	h := doc.Histograms[0]
	var sum uint64
	for _, b := range h.Buckets {
		sum += b.N
	}
	if h.Stage != "total" || h.Count != 5 || sum != 5 || h.Buckets[len(h.Buckets)-1].Le != "+Inf" {
		t.Errorf("total histogram: %+v", h)
	}
	if m := getJSON[hmi.MonitorDoc](t, eng, "/api/v1/engineer/monitor"); !m.Busy || m.Batch != "WO-ENG-1" {
		t.Errorf("monitor with a batch: %+v", m)
	}

	// Roles: the inspector and the admin read; neither tests.
	admin := lr.login("admin", "demo")
	getJSON[hmi.EngineerDoc](t, admin, "/api/v1/engineer")
	if code, b := admin.do(http.MethodPost, "/api/v1/engineer/test", `{"kind":"camera"}`); code != 403 {
		t.Errorf("admin test action: HTTP %d %s", code, b)
	}
	if code, b := lr.login("operator", "demo").do(http.MethodGet, "/api/v1/engineer", ""); code != 403 {
		t.Errorf("operator engineer view: HTTP %d %s", code, b)
	}
}

// TestEngineerWithoutLine: with a bare runner the engineer's routes say
// they are unavailable.
func TestEngineerWithoutLine(t *testing.T) {
	rg := newRig(t, rigOpts{})
	eng := rg.login("engineer", "demo")
	for _, p := range []string{"/api/v1/engineer", "/api/v1/engineer/monitor"} {
		if code, b := eng.do(http.MethodGet, p, ""); code != 503 || errCode(t, b) != "unavailable" {
			t.Errorf("%s: HTTP %d %s", p, code, b)
		}
	}
}

// scrape reads /metrics and parses the exposition.
func scrape(t testing.TB, url string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("metrics exposition: %v", err)
	}
	return fams, raw
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMetricsFromLine: /metrics of the multi-batch line — verdicts by
// reason, a real histogram by stage, device links, ledger commits, codes
// left per pool — and /readyz from Line.Health.
func TestMetricsFromLine(t *testing.T) {
	lr := newLineRig(t)
	data, err := os.ReadFile("../examples/codes/8021762-L1.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lr.line.ImportCodeFile(context.Background(), "8021762-L1", "8021762-L1.txt", data, "engineer"); err != nil {
		t.Fatal(err)
	}
	lr.startBatch("WO-MET-1")
	lr.produce(4)
	fams, raw := scrape(t, lr.ts.URL)
	problems, err := promlint.New(strings.NewReader(string(raw))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "tracline_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	lat := fams["tracline_verdict_latency_seconds"]
	if lat == nil || lat.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no verdict latency histogram: %v", lat)
	}
	stages := map[string]*dto.Histogram{}
	for _, m := range lat.GetMetric() {
		stages[label(m, "stage")] = m.GetHistogram()
	}
	for _, s := range []string{"total", "queue", "journal", "plc", "controller", "camera"} {
		h := stages[s]
		if h == nil {
			t.Errorf("stage %s missing", s)
			continue
		}
		if h.GetSampleCount() != 4 || len(h.GetBucket()) < len(line.DefaultLatencyBounds) {
			t.Errorf("stage %s: %d samples, %d buckets", s, h.GetSampleCount(), len(h.GetBucket()))
		}
		if b := h.GetBucket(); b[0].GetUpperBound() != 0.0005 || b[len(line.DefaultLatencyBounds)-1].GetUpperBound() != 0.5 {
			t.Errorf("stage %s: bounds in seconds: %v … %v", s, b[0].GetUpperBound(), b[len(line.DefaultLatencyBounds)-1].GetUpperBound())
		}
	}
	var pass float64
	for _, m := range fams["tracline_verdicts_total"].GetMetric() {
		if label(m, "outcome") == "pass" {
			pass = m.GetCounter().GetValue()
		}
	}
	if pass != 4 {
		t.Errorf("verdicts pass = %v, want 4", pass)
	}
	if c := fams["tracline_ledger_commit_seconds"].GetMetric(); len(c) != 1 || c[0].GetSummary().GetSampleCount() == 0 {
		t.Errorf("ledger commits: %v", c)
	}
	if p := fams["tracline_pool_codes_available"].GetMetric(); len(p) != 1 || label(p[0], "pool") != "8021762-L1" || p[0].GetGauge().GetValue() == 0 {
		t.Errorf("pool codes: %v", p)
	}
	links := map[string]float64{}
	for _, m := range fams["tracline_device_up"].GetMetric() {
		links[label(m, "device")] = m.GetGauge().GetValue()
	}
	if len(links) == 0 {
		t.Errorf("no device links: %s", raw)
	}

	c := lr.anon()
	if code, b := c.do(http.MethodGet, "/readyz", ""); code != 200 {
		t.Fatalf("readyz: HTTP %d %s", code, b)
	}
	lr.line.Post(line.DeviceFault{Stamp: line.Stamp{T: time.Now()}, Device: "camera", Err: "link lost"})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, b := c.do(http.MethodGet, "/readyz", "")
		var h hmi.Health
		_ = json.Unmarshal(b, &h)
		if code == 503 && !h.OK && strings.Contains(h.Problems["device/camera"], "link lost") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz with the camera down: HTTP %d %s", code, b)
		}
		<-tick.C
	}
	fams, _ = scrape(t, lr.ts.URL)
	for _, m := range fams["tracline_device_up"].GetMetric() {
		if label(m, "device") == "camera" && m.GetGauge().GetValue() != 0 {
			t.Errorf("camera up = %v with its link lost", m.GetGauge().GetValue())
		}
	}
}

// *line.Line is the engineer's access the server looks for on Config.Overview.
var _ hmi.Engineer = (*line.Line)(nil)
