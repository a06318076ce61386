package modbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/modbus"
)

func startSim(t *testing.T) *sim.Sim {
	t.Helper()
	s, err := sim.New(sim.Config{Seed: 1, Heartbeat: 20 * time.Millisecond, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"}}, nil, sim.ManualInfeed())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, cfg plc.Config) *modbus.Driver {
	t.Helper()
	d, err := modbus.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// next waits for the next event matching want (others are skipped).
func next(t *testing.T, d plc.PLC, want func(plc.Event) bool) plc.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-d.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if want(e) {
				return e
			}
		case <-deadline:
			t.Fatal("timed out waiting for an event")
		}
	}
}

func kind(k plc.EventKind) func(plc.Event) bool { return func(e plc.Event) bool { return e.Kind == k } }

func TestItemsAndVerdict(t *testing.T) {
	s := startSim(t)
	d := connect(t, sim.ModbusProfile(s.Endpoints().Modbus))
	next(t, d, kind(plc.EventLinkUp))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Feed(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var items []uint32
	for len(items) < 3 {
		e := next(t, d, kind(plc.EventItem))
		// The line's deadlines run from this stamp: it must be the
		// monotonic clock's, never a wall reading a clock step moves.
		if !strings.Contains(e.At.String(), " m=") {
			t.Fatalf("item %d stamped %s: no monotonic reading", e.Item, e.At)
		}
		items = append(items, e.Item)
	}
	if items[0] != 1 || items[1] != 2 || items[2] != 3 {
		t.Fatalf("items %v, want 1 2 3", items)
	}
	got := s.ExpectVerdict(2)
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 2, Result: plc.ResultReject, Reason: 7}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v.Item != 2 || v.Result != 2 || v.Reason != 7 {
		t.Fatalf("PLC got %+v", v)
	}
	if err := d.Set(ctx, plc.OutTowerLight, int(plc.TowerAmber)); err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, plc.OutStopRequest, 1); err != nil {
		t.Fatal(err)
	}
	if st := s.PLC(); st.TowerLight != 2 || !st.StopRequest {
		t.Fatalf("PLC state %+v", st)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 1}); err == nil {
		t.Fatal("verdict without result accepted")
	}
}

func TestReconnectAfterCut(t *testing.T) {
	s := startSim(t)
	cfg := sim.ModbusProfile(s.Endpoints().Modbus)
	cfg.ReconnectMin, cfg.ReconnectMax = 5*time.Millisecond, 50*time.Millisecond
	d := connect(t, cfg)
	next(t, d, kind(plc.EventLinkUp))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Feed(ctx, 1)
	next(t, d, kind(plc.EventItem))

	s.Cut(sim.DevModbus)
	down := next(t, d, kind(plc.EventLinkDown))
	if down.Err == nil {
		t.Fatal("link down without a reason")
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass}); !errors.Is(err, plc.ErrNotConnected) {
		// The poller may not have dropped the client yet; then the write
		// fails on the cut link instead. Either way it must fail, not hang.
		if err == nil {
			t.Fatal("verdict written through a cut link")
		}
	}
	s.Feed(ctx, 2) // units keep coming while the link is down
	s.Restore(sim.DevModbus)
	next(t, d, kind(plc.EventLinkUp))
	// Items 2 and 3 passed while down: recovered from the counter, in order.
	e := next(t, d, kind(plc.EventItem))
	if e.Item != 2 || !e.Late {
		t.Fatalf("first item after reconnect %v, want 2 (late)", e)
	}
	if e := next(t, d, kind(plc.EventItem)); e.Item != 3 {
		t.Fatalf("second item after reconnect %v, want 3", e)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 3, Result: plc.ResultPass}); err != nil {
		t.Fatalf("verdict after reconnect: %v", err)
	}
}

func TestHeartbeatWatchdog(t *testing.T) {
	s := startSim(t)
	cfg := sim.ModbusProfile(s.Endpoints().Modbus)
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	d := connect(t, cfg)
	next(t, d, kind(plc.EventLinkUp))
	s.FreezeHeartbeat(true)
	e := next(t, d, kind(plc.EventLinkDown))
	if e.Err == nil {
		t.Fatal("no reason")
	}
	s.FreezeHeartbeat(false)
	next(t, d, kind(plc.EventLinkUp))
}

func TestStalledLinkIsAnEventNotAHang(t *testing.T) {
	s := startSim(t)
	cfg := sim.ModbusProfile(s.Endpoints().Modbus)
	cfg.Modbus.Timeout = 100 * time.Millisecond
	cfg.ReconnectMin, cfg.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
	d := connect(t, cfg)
	next(t, d, kind(plc.EventLinkUp))
	s.Stall(sim.DevModbus)
	next(t, d, kind(plc.EventLinkDown))
	s.Restore(sim.DevModbus)
	next(t, d, kind(plc.EventLinkUp))
}

// BenchmarkWriteVerdict: one FC16 verdict write until the simulated PLC
// holds it (go test -bench WriteVerdict ./plc/modbus/).
func BenchmarkWriteVerdict(b *testing.B) {
	s, err := sim.New(sim.Config{Seed: 1, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"}}, nil, sim.ManualInfeed())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	d, err := modbus.New(sim.ModbusProfile(s.Endpoints().Modbus), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Connect(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	go func() {
		for range d.Events() {
		}
	}()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		item := uint32(1_000_000 + i)
		got := s.ExpectVerdict(item)
		if err := d.WriteVerdict(b.Context(), plc.Verdict{Item: item, Result: plc.ResultPass}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// A profile that maps running as a bit of a register and the heartbeat as
// the toggling discrete input works as well as the default one.
func TestBitAndToggleMapping(t *testing.T) {
	s := startSim(t)
	cfg := sim.ModbusProfile(s.Endpoints().Modbus)
	cfg.Signals[plc.SigRunning] = plc.Signal{Table: plc.TableInput, Address: sim.IRRunning, Type: plc.TypeBit, Bit: 0}
	cfg.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableDiscreteInput, Address: sim.DIHeartbeat, Type: plc.TypeBool}
	cfg.HeartbeatTimeout = time.Second
	d := connect(t, cfg)
	next(t, d, kind(plc.EventLinkUp))
	if e := next(t, d, kind(plc.EventRunning)); e.Running {
		t.Fatalf("manual infeed: running %v", e)
	}
	s.Feed(t.Context(), 2)
	for want := uint32(1); want <= 2; want++ {
		if e := next(t, d, kind(plc.EventItem)); e.Item != want {
			t.Fatalf("got %v want %d", e, want)
		}
	}
}

// A unit id the PLC does not answer to: Connect fails with the reason.
func TestWrongUnitID(t *testing.T) {
	s := startSim(t)
	cfg := sim.ModbusProfile(s.Endpoints().Modbus)
	cfg.Modbus.UnitID = 7
	d, err := modbus.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Connect(t.Context()); err == nil {
		t.Fatal("connected to unit 7")
	}
}
