package opcua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/latency"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/uarecord"
	"github.com/tracline/tracline/tracecode"
)

type rig struct {
	dev   *devsim.Printer
	proxy *netsim.Proxy
	drv   *Printer
}

// newRig starts a simulated printer behind a netsim proxy and connects the
// driver through the proxy.
func newRig(t *testing.T, dcfg devsim.PrinterConfig, tune func(*Config)) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dev, err := devsim.NewPrinter(dcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	px, err := netsim.New(dev.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	cfg := SimProfile("opc.tcp://" + px.Addr())
	cfg.Stream.Watchdog = 200 * time.Millisecond
	cfg.Stream.ReconnectMax = 200 * time.Millisecond
	cfg.BufferDepth = max(dcfg.Depth, 1)
	if dcfg.Depth == 0 {
		cfg.BufferDepth = 64
	}
	if tune != nil {
		tune(&cfg)
	}
	drv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if err := drv.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return &rig{dev: dev, proxy: px, drv: drv}
}

func codes(prefix string, n int) []tracecode.Code {
	out := make([]tracecode.Code, n)
	for i := range out {
		out[i] = tracecode.Code(fmt.Sprintf("%s%04d", prefix, i+1))
	}
	return out
}

// next waits for the next event of one of kinds (others are returned too
// if kinds is empty).
func next(t *testing.T, ctx context.Context, evs <-chan printer.Event) printer.Event {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the deadline")
	}
	return printer.Event{}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSendPrintFlush(t *testing.T) {
	for _, h := range []Handover{HandoverArray, HandoverNode, HandoverMethod} {
		t.Run(string(h), func(t *testing.T) {
			r := newRig(t, devsim.PrinterConfig{Depth: 16}, func(c *Config) {
				c.Handover = h
				if h == HandoverNode {
					c.EnqueueNode = "ns=1;s=Printer.NextCode"
				}
			})
			ctx := testCtx(t)
			cs := codes("C"+string(h)+"-", 6)
			if err := r.drv.Send(ctx, cs); err != nil {
				t.Fatal(err)
			}
			if got := r.dev.Buffer(); len(got) != 6 {
				t.Fatalf("device buffer = %v", got)
			}
			// Too many for the depth: refused, nothing sent.
			err := r.drv.Send(ctx, codes("X", 11))
			var se *printer.SendError
			if !errors.As(err, &se) || !errors.Is(err, printer.ErrBufferFull) || len(se.NotTaken) != 11 {
				t.Fatalf("overfull send: %v", err)
			}
			for i := 0; i < 2; i++ {
				r.dev.PrintOnto(sim.PrintOK)
			}
			for i := 0; i < 2; i++ {
				ev := next(t, ctx, r.drv.Events())
				if ev.Kind != printer.EventPrinted || ev.Code != cs[i] {
					t.Fatalf("event %d = %+v, want printed %s", i, ev, cs[i])
				}
			}
			res, err := r.drv.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Unconfirmed, cs[2:]) || !slices.Equal(res.Removed, cs[2:]) {
				t.Fatalf("flush = %+v, want %v", res, cs[2:])
			}
			if len(r.drv.Pending()) != 0 || r.dev.Level() != 0 {
				t.Fatal("flush left codes behind")
			}
			st, err := r.drv.Status(ctx)
			if err != nil || st.State != "running" || st.BufferLevel != 0 {
				t.Fatalf("status %+v %v", st, err)
			}
		})
	}
}

func TestFlushCountsPrintsInFlight(t *testing.T) {
	r := newRig(t, devsim.PrinterConfig{Depth: 32}, func(c *Config) { c.Stream.PublishingInterval = 200 * time.Millisecond })
	ctx := testCtx(t)
	cs := codes("F", 10)
	if err := r.drv.Send(ctx, cs); err != nil {
		t.Fatal(err)
	}
	// Prints whose records the driver has not received yet when it flushes
	// must count as confirmed, not as unconfirmed.
	for i := 0; i < 4; i++ {
		r.dev.PrintOnto(sim.PrintOK)
	}
	res, err := r.drv.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Unconfirmed, cs[4:]) {
		t.Fatalf("unconfirmed = %v, want %v", res.Unconfirmed, cs[4:])
	}
	var printed []tracecode.Code
	for len(printed) < 4 {
		ev := next(t, ctx, r.drv.Events())
		if ev.Kind == printer.EventPrinted {
			printed = append(printed, ev.Code)
		}
	}
	if !slices.Equal(printed, cs[:4]) {
		t.Fatalf("printed = %v", printed)
	}
}

// TestBurstNothingLost prints much faster than the publishing interval:
// every record must arrive, in order, recovered from the ring.
func TestBurstNothingLost(t *testing.T) {
	r := newRig(t, devsim.PrinterConfig{Depth: 64, Ring: 64}, func(c *Config) { c.Stream.PublishingInterval = 100 * time.Millisecond })
	ctx := testCtx(t)
	cs := codes("B", 40)
	if err := r.drv.Send(ctx, cs); err != nil {
		t.Fatal(err)
	}
	for range cs {
		r.dev.PrintOnto(sim.PrintOK)
	}
	for i := range cs {
		ev := next(t, ctx, r.drv.Events())
		if ev.Kind != printer.EventPrinted || ev.Code != cs[i] || ev.Seq != uint64(i+1) {
			t.Fatalf("event %d = %+v, want printed %s seq %d", i, ev, cs[i], i+1)
		}
	}
}

// TestBurstBeyondRingIsAGap: with a ring smaller than the burst, what the
// ring lost is reported as a gap with the uncertain codes — never guessed.
func TestBurstBeyondRingIsAGap(t *testing.T) {
	r := newRig(t, devsim.PrinterConfig{Depth: 64, Ring: 3}, func(c *Config) { c.Stream.PublishingInterval = 300 * time.Millisecond })
	ctx := testCtx(t)
	cs := codes("G", 30)
	if err := r.drv.Send(ctx, cs); err != nil {
		t.Fatal(err)
	}
	for range cs {
		r.dev.PrintOnto(sim.PrintOK)
	}
	var seen uint64
	var printed, uncertain []tracecode.Code
	for seen < 30 {
		ev := next(t, ctx, r.drv.Events())
		switch ev.Kind {
		case printer.EventPrinted:
			if ev.Seq != seen+1 {
				t.Fatalf("printed seq %d after %d", ev.Seq, seen)
			}
			seen = ev.Seq
			printed = append(printed, ev.Code)
		case printer.EventGap:
			seen += uint64(ev.Lost)
			uncertain = append(uncertain, ev.Uncertain...)
		default:
			t.Fatalf("unexpected %+v", ev)
		}
	}
	if len(uncertain) == 0 {
		t.Fatal("no gap reported although the ring holds 3 of 30")
	}
	all := append(slices.Clone(uncertain), printed...)
	slices.Sort(all)
	want := slices.Clone(cs)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("printed+uncertain = %v, want every code once", all)
	}
}

func TestReconnectAfterCut(t *testing.T) {
	r := newRig(t, devsim.PrinterConfig{Depth: 32}, nil)
	ctx := testCtx(t)
	cs := codes("R", 8)
	if err := r.drv.Send(ctx, cs); err != nil {
		t.Fatal(err)
	}
	r.dev.PrintOnto(sim.PrintOK)
	if ev := next(t, ctx, r.drv.Events()); ev.Kind != printer.EventPrinted || ev.Code != cs[0] {
		t.Fatalf("first event %+v", ev)
	}
	r.proxy.Cut()
	if ev := next(t, ctx, r.drv.Events()); ev.Kind != printer.EventDown {
		t.Fatalf("after cut: %+v", ev)
	}
	// Sends fail cleanly while down.
	if err := r.drv.Send(ctx, []tracecode.Code{"DOWN1"}); err == nil {
		t.Fatal("send while down succeeded")
	}
	for i := 0; i < 3; i++ { // printed while the link is cut
		r.dev.PrintOnto(sim.PrintOK)
	}
	r.proxy.Restore()
	if ev := next(t, ctx, r.drv.Events()); ev.Kind != printer.EventUp {
		t.Fatalf("after restore: %+v", ev)
	}
	for i := 1; i < 4; i++ {
		ev := next(t, ctx, r.drv.Events())
		if ev.Kind != printer.EventPrinted || ev.Code != cs[i] {
			t.Fatalf("recovered event %d = %+v", i, ev)
		}
	}
	res, err := r.drv.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Unconfirmed, cs[4:]) {
		t.Fatalf("unconfirmed after reconnect = %v", res.Unconfirmed)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := SimProfile("opc.tcp://127.0.0.1:4840")
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"sim profile", func(*Config) {}, ""},
		{"no endpoint", func(c *Config) { c.Stream.Endpoint = "" }, "printer.printer.endpoint: must be set"},
		{"bad scheme", func(c *Config) { c.Stream.Endpoint = "http://x" }, "does not start with opc.tcp://"},
		{"bad record node", func(c *Config) { c.Stream.RecordNode = "ns=1;q=x" }, "printer.printer.record_node"},
		{"no handover", func(c *Config) { c.Handover = "" }, "handover: must be set"},
		{"bad handover", func(c *Config) { c.Handover = "fax" }, `"fax" is not array, node or method`},
		{"method without add", func(c *Config) { c.Handover = HandoverMethod; c.AddMethod = "" }, "add_method: must be set"},
		{"depth", func(c *Config) { c.BufferDepth = 0 }, "buffer_depth: 0 is outside"},
		{"security mode", func(c *Config) { c.Stream.Security.Mode = "Sign" }, "needs policy Basic256Sha256"},
		{"security files", func(c *Config) { c.Stream.Security = uarecordSec("Basic256Sha256", "Sign") }, "needs cert_file and key_file"},
		{"security policy", func(c *Config) { c.Stream.Security.Policy = "Basic128" }, `"Basic128" is not None or Basic256Sha256`},
		{"fast interval", func(c *Config) { c.Stream.PublishingInterval = time.Microsecond }, "below 1ms"},
		{"status node", func(c *Config) { c.InkLowNode = "garbage" }, "ink_low_node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRecordTable(t *testing.T) {
	tests := []struct {
		raw  string
		ok   bool
		seq  uint64
		code string
	}{
		{`{"seq":3,"code":"ABC","at":"2026-01-01T00:00:00Z"}`, true, 3, "ABC"},
		{`{"seq":0,"code":"ABC"}`, false, 0, ""},
		{`{"seq":-1,"code":"ABC"}`, false, 0, ""},
		{`{"seq":1,"code":""}`, false, 0, ""},
		{`{"seq":1}`, false, 0, ""},
		{`{"code":"x"}`, false, 0, ""},
		{`[1,2]`, false, 0, ""},
		{``, false, 0, ""},
	}
	for _, tc := range tests {
		r, err := DecodeRecord(tc.raw, "seq", "code")
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.raw, err, tc.ok)
			continue
		}
		if tc.ok && (r.Seq != tc.seq || r.Code != tc.code) {
			t.Errorf("%q: got %+v", tc.raw, r)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(`{"seq":3,"code":"ABC","at":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"seq":1e3,"code":7}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := DecodeRecord(raw, "seq", "code")
		if err == nil && (r.Seq == 0 || r.Code == "") {
			t.Fatalf("accepted %q as %+v", raw, r)
		}
	})
}

// BenchmarkSendToPrinted measures hand-over → print → record notification
// over loopback OPC UA (publishing interval 1ms).
func BenchmarkSendToPrinted(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev, _ := devsim.NewPrinter(devsim.PrinterConfig{Depth: 64}, nil)
	dev.Start(ctx)
	defer dev.Close()
	cfg := SimProfile(dev.Endpoint())
	cfg.Stream.PublishingInterval = time.Millisecond
	drv, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := drv.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer drv.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c := tracecode.Code(fmt.Sprintf("BENCH%08d", i))
		if err := drv.Send(ctx, []tracecode.Code{c}); err != nil {
			b.Fatal(err)
		}
		dev.PrintOnto(sim.PrintOK)
		for ev := range drv.Events() {
			if ev.Kind == printer.EventPrinted && ev.Code == c {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func uarecordSec(policy, mode string) uarecord.Security {
	return uarecord.Security{Policy: policy, Mode: mode}
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

// TestSlowLinkIsDown: a printer that answers, but every byte 400 ms late,
// is down for the line (latency.ErrTooSlow, naming the printer) once its
// answers — the driver's sends as much as the stream's reads — have been
// late for the budget's span; it is up again only once it answers in
// time, and what it printed meanwhile is recovered.
func TestSlowLinkIsDown(t *testing.T) {
	r := newRig(t, devsim.PrinterConfig{Depth: 32}, nil)
	ctx := testCtx(t)
	cs := codes("S", 8)
	if err := r.drv.Send(ctx, cs); err != nil {
		t.Fatal(err)
	}
	r.dev.PrintOnto(sim.PrintOK)
	if ev := next(t, ctx, r.drv.Events()); ev.Kind != printer.EventPrinted || ev.Code != cs[0] {
		t.Fatalf("first event %+v", ev)
	} else if !strings.Contains(ev.At.String(), " m=") {
		// The line pairs and times units on this stamp: the monotonic clock's.
		t.Fatalf("print record stamped %s: no monotonic reading", ev.At)
	}
	r.proxy.SetDelay(400 * time.Millisecond)
	r.dev.PrintOnto(sim.PrintOK)
	var down printer.Event
	for down.Kind != printer.EventDown {
		if down = next(t, ctx, r.drv.Events()); down.Kind == printer.EventPrinted && down.Code != cs[1] {
			t.Fatalf("printed while slow: %+v", down)
		}
	}
	if !errors.Is(down.Err, latency.ErrTooSlow) || !strings.Contains(down.Err.Error(), "printer") {
		t.Fatalf("down: %v, want latency.ErrTooSlow naming the printer", down.Err)
	}
	r.dev.PrintOnto(sim.PrintOK)
	r.proxy.SetDelay(0)
	if ev := next(t, ctx, r.drv.Events()); ev.Kind != printer.EventUp {
		t.Fatalf("after the delay ended: %+v", ev)
	}
	for ev := next(t, ctx, r.drv.Events()); ev.Code != cs[2]; ev = next(t, ctx, r.drv.Events()) {
		if ev.Kind != printer.EventPrinted || ev.Code != cs[1] {
			t.Fatalf("recovering: %+v", ev)
		}
	}
}
