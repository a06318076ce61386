package opcua

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/camera"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/latency"
)

type publisher interface {
	Start(ctx context.Context) error
	Addr() string
	Close() error
}

// Shared simulated cameras: building an OPC UA server costs seconds under
// -race, so the tests share two (each test connects its own proxy and
// driver; a driver starts at the device's current count).
var (
	camBig   *devsim.Camera // ring 128
	camSmall *devsim.Camera // ring 4
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	camBig, err = devsim.NewCamera(devsim.CameraConfig{Ring: 128}, nil)
	if err == nil {
		err = camBig.Start(ctx)
	}
	if err == nil {
		camSmall, err = devsim.NewCamera(devsim.CameraConfig{Ring: 4}, nil)
	}
	if err == nil {
		err = camSmall.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "start simulated cameras:", err)
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	camBig.Close()
	camSmall.Close()
	os.Exit(code)
}

// startDev starts a test's own device.
func startDev(t *testing.T, dev publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
}

// connectVia puts a netsim proxy in front of dev and connects a driver
// with the sim profile for object through it.
func connectVia(t *testing.T, dev publisher, object string, tune func(*Config)) (*Camera, *netsim.Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	px, err := netsim.New(dev.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	cfg := SimProfile("opc.tcp://"+px.Addr(), object)
	cfg.Stream.Watchdog = 200 * time.Millisecond
	cfg.Stream.ReconnectMax = 200 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	cam, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if err := cam.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Close() })
	return cam, px
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func next(t *testing.T, ctx context.Context, c *Camera) camera.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the deadline")
	}
	return camera.Event{}
}

func TestResultsFaultsAndReconnect(t *testing.T) {
	dev := camBig
	cam, px := connectVia(t, dev, devsim.CameraObject, nil)
	ctx := testCtx(t)
	base := dev.ResultCount()

	dev.Inspect(101, "CODE-101", sim.CameraOK)
	dev.Inspect(102, "CODE-102", sim.CameraLost) // nothing published: no event at all
	dev.Inspect(103, "CODE-103", sim.CameraNoRead)
	dev.Inspect(104, "CODE-104", sim.CameraLowGrade)
	want := []camera.Result{
		{Seq: base + 1, Item: 101, Codes: []string{"CODE-101"}, Grade: 'A', Pass: true},
		{Seq: base + 2, Item: 103, Grade: 0, Pass: false},
		{Seq: base + 3, Item: 104, Codes: []string{"CODE-104"}, Grade: 'D', Pass: false},
	}
	for i, w := range want {
		ev := next(t, ctx, cam)
		r := ev.Result
		if ev.Kind != camera.EventResult || r.Seq != w.Seq || r.Item != w.Item || !slices.Equal(r.Codes, w.Codes) || r.Grade != w.Grade || r.Pass != w.Pass || r.At.IsZero() {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
	}

	px.Cut()
	if ev := next(t, ctx, cam); ev.Kind != camera.EventDown || ev.Err == nil {
		t.Fatalf("after cut: %+v", ev)
	}
	for i := uint32(0); i < 5; i++ { // inspected while the link is cut
		dev.Inspect(200+i, fmt.Sprintf("CODE-%d", 200+i), sim.CameraOK)
	}
	px.Restore()
	if ev := next(t, ctx, cam); ev.Kind != camera.EventUp {
		t.Fatalf("after restore: %+v", ev)
	}
	for i := uint32(0); i < 5; i++ {
		ev := next(t, ctx, cam)
		if ev.Kind != camera.EventResult || ev.Result.Item != 200+i || ev.Result.Seq != base+uint64(4+i) {
			t.Fatalf("recovered %d = %+v", i, ev)
		}
	}
}

// TestStalledLinkIsDetected: a half-dead link (connection open, no byte
// through) is found by the watchdog, and results published meanwhile are
// recovered after the link heals.
func TestStalledLinkIsDetected(t *testing.T) {
	dev := camBig
	cam, px := connectVia(t, dev, devsim.CameraObject, func(c *Config) {
		c.Stream.RequestTimeout = 300 * time.Millisecond
	})
	ctx := testCtx(t)
	dev.Inspect(1, "A", sim.CameraOK)
	if ev := next(t, ctx, cam); ev.Kind != camera.EventResult || ev.Result.Item != 1 {
		t.Fatalf("first %+v", ev)
	}
	px.Stall()
	dev.Inspect(2, "B", sim.CameraOK)
	if ev := next(t, ctx, cam); ev.Kind != camera.EventDown {
		t.Fatalf("after stall: %+v", ev)
	}
	dev.Inspect(3, "C", sim.CameraOK)
	px.Restore()
	if ev := next(t, ctx, cam); ev.Kind != camera.EventUp {
		t.Fatalf("after restore: %+v", ev)
	}
	for _, item := range []uint32{2, 3} {
		ev := next(t, ctx, cam)
		if ev.Kind != camera.EventResult || ev.Result.Item != item {
			t.Fatalf("recovered %+v, want item %d", ev, item)
		}
	}
}

// TestBurst publishes far faster than the publishing interval: what the
// ring (or the results-by-id method, or the field nodes) still holds is
// delivered, in order; what it lost is a gap, never a guess. Item ids are
// the device's seq numbers so every result can be checked.
func TestBurst(t *testing.T) {
	fetch := func(c *Config) {
		c.Stream.RingNode = ""
		c.Stream.FetchObject = "ns=1;s=Camera"
		c.Stream.FetchMethod = "ns=1;s=Camera.GetResult"
	}
	fields := func(ring bool) func(*Config) {
		return func(c *Config) { *c = SimFieldProfile(c.Stream.Endpoint, devsim.CameraObject, ring) }
	}
	// fieldNodes: the separate-field-nodes profile. A server reads several
	// nodes one by one, so a read during a burst can pair one result's item
	// with another's code even with a steady counter (the driver's double
	// read removes most, not all): that profile guarantees the counting —
	// nothing lost silently — not the pairing. The JSON record profile,
	// which the line uses, is atomic and checked for both.
	tests := []struct {
		name       string
		dev        *devsim.Camera
		tune       func(*Config)
		wantGap    bool
		fieldNodes bool
	}{
		{"ring covers the burst", camBig, nil, false, false},
		{"ring too small", camSmall, nil, true, false},
		{"results by id", camBig, fetch, false, false},
		{"results by id, history too short", camSmall, fetch, true, false},
		{"field nodes + ring", camBig, fields(true), false, true},
		{"field nodes, no ring", camBig, fields(false), true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := tc.dev
			cam, _ := connectVia(t, dev, devsim.CameraObject, func(c *Config) {
				if tc.tune != nil {
					tc.tune(c)
				}
				c.Stream.PublishingInterval = 300 * time.Millisecond
			})
			ctx := testCtx(t)
			base := dev.ResultCount()
			const n = 40
			for i := uint64(1); i <= n; i++ {
				item := uint32(base + i)
				dev.Inspect(item, fmt.Sprintf("C%d", item), sim.CameraOK)
			}
			seen := base
			lost := 0
			for seen < base+n {
				ev := next(t, ctx, cam)
				switch ev.Kind {
				case camera.EventResult:
					r := ev.Result
					paired := r.Item == uint32(r.Seq) && len(r.Codes) == 1 && r.Codes[0] == fmt.Sprintf("C%d", r.Item)
					if r.Seq != seen+1 || !paired && !tc.fieldNodes {
						t.Fatalf("result %+v after seq %d", r, seen)
					}
					seen = r.Seq
				case camera.EventGap:
					if ev.From != seen+1 || ev.Lost != int(ev.To-ev.From+1) {
						t.Fatalf("gap %+v after seq %d", ev, seen)
					}
					seen = ev.To
					lost += ev.Lost
				default:
					t.Fatalf("unexpected %+v", ev)
				}
			}
			if (lost > 0) != tc.wantGap {
				t.Fatalf("lost %d, want gap=%v", lost, tc.wantGap)
			}
		})
	}
}

func TestAggregationCamera(t *testing.T) {
	dev, err := devsim.NewAggCamera(devsim.CameraConfig{}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, dev)
	cam, _ := connectVia(t, dev, devsim.AggCameraObject, nil)
	ctx := testCtx(t)
	codes := make([]string, 24)
	for i := range codes {
		codes[i] = fmt.Sprintf("(01)06901234567892(21)S%03d", i)
	}
	dev.Read(9, codes)
	ev := next(t, ctx, cam)
	if ev.Kind != camera.EventResult || ev.Result.Item != 9 || ev.Result.Level != 3 || !slices.Equal(ev.Result.Codes, codes) || !ev.Result.Pass {
		t.Fatalf("agg result %+v", ev)
	}
	// Where the camera's results stand (a purge's mark) counts results the
	// driver has not delivered yet.
	if n, err := cam.ResultCount(ctx); err != nil || n != ev.Result.Seq {
		t.Fatalf("result count after result %d: %d, %v", ev.Result.Seq, n, err)
	}
	dev.Read(10, codes[:2])
	dev.Read(11, codes[2:4])
	if n, err := cam.ResultCount(ctx); err != nil || n != ev.Result.Seq+2 {
		t.Fatalf("result count with two results undelivered: %d, %v; want %d", n, err, ev.Result.Seq+2)
	}
	cam.Close()
	if _, err := cam.ResultCount(ctx); err == nil {
		t.Fatal("result count of a closed camera: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"sim", func(*Config) {}, ""},
		{"no record node", func(c *Config) { c.Stream.RecordNode = "" }, "camera.Camera.record_node: must be set"},
		{"bad ring", func(c *Config) { c.Stream.RingNode = "x" }, "camera.Camera.ring_node"},
		{"dup field", func(c *Config) { c.Fields.Item = "seq" }, `key "seq" is already used`},
		{"negative watchdog", func(c *Config) { c.Stream.Watchdog = -time.Second }, "watchdog: -1s is negative"},
		{"field node", func(c *Config) { c.Stream.FieldNodes = map[string]string{"item": "Camera.Item"} }, "camera.Camera.field_nodes.item"},
		{"field seq clash", func(c *Config) { c.Stream.FieldNodes = map[string]string{"seq": "ns=1;s=X"} }, "the key is the counter's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := SimProfile("opc.tcp://127.0.0.1:4841", "Camera")
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeResultTable(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		ok   bool
		want camera.Result
	}{
		{"full", `{"seq":4,"item":7,"codes":["X","Y"],"grade":"B","pass":true,"level":2}`, true, camera.Result{Seq: 4, Item: 7, Codes: []string{"X", "Y"}, Grade: 'B', Pass: true, Level: 2}},
		{"one code string", `{"seq":1,"item":1,"codes":"X","grade":3.7,"pass":true}`, true, camera.Result{Seq: 1, Item: 1, Codes: []string{"X"}, Grade: 'A', Pass: true}},
		{"no-read", `{"seq":1,"item":1,"codes":[],"grade":"","pass":false}`, true, camera.Result{Seq: 1, Item: 1}},
		{"null codes", `{"seq":1,"item":1,"codes":null,"pass":false}`, true, camera.Result{Seq: 1, Item: 1}},
		{"seq 0", `{"seq":0,"item":1,"pass":true}`, false, camera.Result{}},
		{"no item", `{"seq":1,"pass":true}`, false, camera.Result{}},
		{"item too big", `{"seq":1,"item":4294967296,"pass":true}`, false, camera.Result{}},
		{"no pass", `{"seq":1,"item":1}`, false, camera.Result{}},
		{"bad grade", `{"seq":1,"item":1,"pass":true,"grade":"Z"}`, false, camera.Result{}},
		{"grade out of range", `{"seq":1,"item":1,"pass":true,"grade":7}`, false, camera.Result{}},
		{"codes number", `{"seq":1,"item":1,"pass":true,"codes":5}`, false, camera.Result{}},
		{"not json", `seq=1`, false, camera.Result{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeResult(tc.raw, Fields{})
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if r.Seq != tc.want.Seq || r.Item != tc.want.Item || !slices.Equal(r.Codes, tc.want.Codes) || r.Grade != tc.want.Grade || r.Pass != tc.want.Pass || r.Level != tc.want.Level {
				t.Fatalf("got %+v, want %+v", r, tc.want)
			}
		})
	}
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(`{"seq":4,"item":7,"codes":["X","Y"],"grade":"B","pass":true,"level":2,"at":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"seq":1,"item":1,"codes":"X","grade":3.7,"pass":true}`)
	f.Add(`{"seq":1,"item":1,"codes":null,"grade":null,"pass":false}`)
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := DecodeResult(raw, Fields{})
		if err != nil {
			return
		}
		if r.Seq == 0 {
			t.Fatalf("accepted seq 0 from %q", raw)
		}
		for _, c := range r.Codes {
			if c == "" {
				t.Fatalf("empty code accepted from %q", raw)
			}
		}
		if r.Grade != 0 && (r.Grade < 'A' || r.Grade > 'F') {
			t.Fatalf("grade %q from %q", r.Grade, raw)
		}
	})
}

// BenchmarkInspectToEvent measures publish (device) → notification →
// decoded event over loopback OPC UA at a 1 ms publishing interval.
func BenchmarkInspectToEvent(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev := camBig
	cfg := SimProfile("opc.tcp://"+dev.Addr(), devsim.CameraObject)
	cfg.Stream.PublishingInterval = time.Millisecond
	cam, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := cam.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		item := uint32(1_000_000 + i)
		dev.Inspect(item, "CODE", sim.CameraOK)
		for ev := range cam.Events() {
			if ev.Kind == camera.EventResult && ev.Result.Item == item {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// TestTriggeredCamera: OPC 40100-style triggering: the controller starts a
// job per item; a unit passing without a job gets no result.
func TestTriggeredCamera(t *testing.T) {
	dev, err := devsim.NewCamera(devsim.CameraConfig{Trigger: "method"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, dev)
	cam, _ := connectVia(t, dev, devsim.CameraObject, func(c *Config) {
		c.TriggerObject = "ns=1;s=Camera"
		c.TriggerMethod = "ns=1;s=Camera.StartSingleJob"
	})
	ctx := testCtx(t)
	if err := cam.StartSingleJob(ctx, 77); err != nil {
		t.Fatal(err)
	}
	dev.Inspect(5, "X", sim.CameraOK) // result for job 77
	dev.Inspect(6, "Y", sim.CameraOK) // no job: no result
	if err := cam.StartSingleJob(ctx, 78); err != nil {
		t.Fatal(err)
	}
	dev.Inspect(7, "Z", sim.CameraOK)
	for _, w := range []struct {
		item uint32
		code string
	}{{77, "X"}, {78, "Z"}} {
		ev := next(t, ctx, cam)
		if ev.Kind != camera.EventResult || ev.Result.Item != w.item || ev.Result.Codes[0] != w.code {
			t.Fatalf("event %+v, want item %d code %s", ev, w.item, w.code)
		}
	}
	// A camera profile without a trigger method says so.
	plain, err := New(SimProfile("opc.tcp://127.0.0.1:1", "Camera"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.StartSingleJob(ctx, 1); !errors.Is(err, ErrNoTrigger) {
		t.Fatalf("err %v", err)
	}
	plain.Close()
}

// reportPercentiles adds p50 and p99 (µs) to the benchmark's output.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestSlowLinkIsDown: a camera that answers, but every byte 400 ms late,
// is down for the line (latency.ErrTooSlow, naming the camera) once its
// answers have been late for the budget's span, and up again only once it
// answers in time; results published meanwhile are recovered.
func TestSlowLinkIsDown(t *testing.T) {
	dev := camBig
	cam, px := connectVia(t, dev, devsim.CameraObject, nil)
	ctx := testCtx(t)
	dev.Inspect(1, "A", sim.CameraOK)
	if ev := next(t, ctx, cam); ev.Kind != camera.EventResult || ev.Result.Item != 1 {
		t.Fatalf("first %+v", ev)
	} else if !strings.Contains(ev.At.String(), " m=") {
		// The line decides on this stamp: the monotonic clock's, never a
		// wall reading (nor the camera's own clock) a clock step moves.
		t.Fatalf("result stamped %s: no monotonic reading", ev.At)
	}
	px.SetDelay(400 * time.Millisecond)
	dev.Inspect(2, "B", sim.CameraOK)
	var down camera.Event
	for down.Kind != camera.EventDown {
		down = next(t, ctx, cam) // the result may still come, late
	}
	if !errors.Is(down.Err, latency.ErrTooSlow) || !strings.Contains(down.Err.Error(), "Camera") {
		t.Fatalf("down: %v, want latency.ErrTooSlow naming the camera", down.Err)
	}
	dev.Inspect(3, "C", sim.CameraOK)
	px.SetDelay(0)
	if ev := next(t, ctx, cam); ev.Kind != camera.EventUp {
		t.Fatalf("after the delay ended: %+v", ev)
	}
	for ev := next(t, ctx, cam); ev.Kind != camera.EventResult || ev.Result.Item != 3; ev = next(t, ctx, cam) {
		if ev.Kind != camera.EventResult {
			t.Fatalf("recovering: %+v", ev)
		}
	}
}
