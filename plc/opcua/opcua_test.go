package opcua_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/opcua"
)

func startSim(t *testing.T) *sim.Sim {
	t.Helper()
	return startSimConfig(t, sim.Config{Seed: 1, Heartbeat: 20 * time.Millisecond, Listen: sim.Listen{HTTP: "off"}})
}

// startSimConfig starts a simulator of cfg fed by the test.
func startSimConfig(t *testing.T, cfg sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg, nil, sim.ManualInfeed())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, cfg plc.Config, hooks bool) *opcua.Driver {
	t.Helper()
	d, err := opcua.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hooks {
		opcua.EnableTestHooks(d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func next(t *testing.T, d plc.PLC, want func(plc.Event) bool) plc.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
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
	d := connect(t, sim.OPCUAProfile(s.Endpoints().PLCOPCUA), false)
	next(t, d, kind(plc.EventLinkUp))
	ctx := t.Context()
	// The first notification of the counter is the baseline; feed after it.
	if err := s.Feed(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for want := uint32(1); want <= 5; want++ {
		if e := next(t, d, kind(plc.EventItem)); e.Item != want {
			t.Fatalf("item %v, want %d", e, want)
		}
	}
	got := s.ExpectVerdict(4)
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 4, Result: plc.ResultPass}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v.Item != 4 || v.Result != 1 {
		t.Fatalf("PLC got %+v", v)
	}
	for _, o := range []struct {
		out plc.Output
		val int
	}{{plc.OutTowerLight, int(plc.TowerRed)}, {plc.OutAlarm, 1}, {plc.OutStopRequest, 1}} {
		if err := d.Set(ctx, o.out, o.val); err != nil {
			t.Fatalf("%s: %v", o.out, err)
		}
	}
	if st := s.PLC(); st.TowerLight != 3 || !st.Alarm || !st.StopRequest {
		t.Fatalf("PLC state %+v", st)
	}
}

func TestReconnectAfterCut(t *testing.T) {
	s := startSim(t)
	cfg := sim.OPCUAProfile(s.Endpoints().PLCOPCUA)
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 100*time.Millisecond
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.OPCUA.Timeout = 500 * time.Millisecond
	d := connect(t, cfg, false)
	next(t, d, kind(plc.EventLinkUp))
	ctx := t.Context()
	s.Feed(ctx, 1)
	if e := next(t, d, kind(plc.EventItem)); e.Item != 1 {
		t.Fatalf("got %v", e)
	}
	s.Cut(sim.DevPLCOPCUA)
	next(t, d, kind(plc.EventLinkDown))
	s.Feed(ctx, 2)
	s.Restore(sim.DevPLCOPCUA)
	next(t, d, kind(plc.EventLinkUp))
	e := next(t, d, kind(plc.EventItem))
	if e.Item != 2 || !e.Late {
		t.Fatalf("first item after reconnect %v, want 2 (late)", e)
	}
	if e := next(t, d, kind(plc.EventItem)); e.Item != 3 {
		t.Fatalf("second item after reconnect %v, want 3", e)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 3, Result: plc.ResultReject, Reason: 2}); err != nil {
		t.Fatalf("verdict after reconnect: %v", err)
	}
}

func TestSilentSubscriptionIsRecreated(t *testing.T) {
	s := startSim(t)
	cfg := sim.OPCUAProfile(s.Endpoints().PLCOPCUA)
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	d := connect(t, cfg, true)
	next(t, d, kind(plc.EventLinkUp))
	opcua.KillSubscription(d)
	s.Feed(t.Context(), 1)
	down := next(t, d, kind(plc.EventLinkDown))
	t.Logf("down: %v", down.Err)
	next(t, d, kind(plc.EventLinkUp))
	if e := next(t, d, kind(plc.EventItem)); e.Item != 1 {
		t.Fatalf("item after re-subscribe %v, want 1", e)
	}
	if d.Resubscribed() != 1 {
		t.Fatalf("resubscribed %d times, want 1", d.Resubscribed())
	}
}

func TestHeartbeatWatchdog(t *testing.T) {
	s := startSim(t)
	cfg := sim.OPCUAProfile(s.Endpoints().PLCOPCUA)
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	d := connect(t, cfg, false)
	next(t, d, kind(plc.EventLinkUp))
	s.FreezeHeartbeat(true)
	next(t, d, kind(plc.EventLinkDown))
	s.FreezeHeartbeat(false)
	next(t, d, kind(plc.EventLinkUp))
	if d.Resubscribed() != 0 {
		t.Fatalf("a frozen heartbeat re-created the subscription")
	}
}

func benchSetup(b *testing.B) (*sim.Sim, *opcua.Driver) {
	s, err := sim.New(sim.Config{Seed: 1, Listen: sim.Listen{HTTP: "off"}}, nil, sim.ManualInfeed())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	cfg := sim.OPCUAProfile(s.Endpoints().PLCOPCUA)
	cfg.OPCUA.PublishingInterval = 5 * time.Millisecond
	d, err := opcua.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Connect(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return s, d
}

// BenchmarkWriteVerdict: one OPC UA Write of the verdict until the simulated
// PLC holds it.
func BenchmarkWriteVerdict(b *testing.B) {
	s, d := benchSetup(b)
	go func() {
		for range d.Events() {
		}
	}()
	for i := 0; b.Loop(); i++ {
		item := uint32(1_000_000 + i)
		got := s.ExpectVerdict(item)
		if err := d.WriteVerdict(b.Context(), plc.Verdict{Item: item, Result: plc.ResultPass}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// BenchmarkWriteToNotification: the PLC's item counter changes → the
// driver's subscription delivers the item (publishing interval 5ms). Each
// change comes at a random phase of the publishing cycle (the wait for it
// is not timed), so ns/op is the mean latency, not a phase-locked one.
func BenchmarkWriteToNotification(b *testing.B) {
	s, d := benchSetup(b)
	next := uint32(1)
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		b.StopTimer()
		dephase := time.NewTimer(time.Duration(rng.Int64N(int64(5 * time.Millisecond))))
		<-dephase.C
		b.StartTimer()
		if err := s.Feed(b.Context(), 1); err != nil {
			b.Fatal(err)
		}
		for e := range d.Events() {
			if e.Kind == plc.EventItem && e.Item == next {
				break
			}
		}
		next++
	}
}
