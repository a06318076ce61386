package opcua_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/plc"
)

// With the project's simulated line: units through the gate come back as
// gate events with what the simulated PLC recorded, and controller_alive
// reaches its node.
func TestGateRingOfTheSimulatedLine(t *testing.T) {
	// The verdict for item 2 is written once its item event has come back
	// to the test: the gate 2 s down the line leaves a loaded machine (the
	// tests run side by side) the time for that round trip.
	s := startSimConfig(t, sim.Config{Seed: 1, Heartbeat: 20 * time.Millisecond, Positions: sim.Positions{Gate: 2 * time.Second}, Listen: sim.Listen{HTTP: "off"}})
	cfg := sim.OPCUAProfile(s.Endpoints().PLCOPCUA)
	cfg.Signals[plc.SigGateOutcome] = plc.Signal{Node: node(sim.NodeGateOutcomes), Type: plc.TypeGateRing, Length: sim.GateRingSize}
	cfg.Signals[plc.SigControllerAlive] = plc.Signal{Node: node(sim.NodeControllerAlive), Type: plc.TypeU16}
	d := connect(t, cfg, false)
	next(t, d, kind(plc.EventLinkUp))
	ctx := t.Context()
	if err := d.Set(ctx, plc.OutControllerAlive, 4242); err != nil {
		t.Fatal(err)
	}
	if st := s.PLC(); st.ControllerAlive != 4242 {
		t.Fatalf("PLC holds controller_alive %d", st.ControllerAlive)
	}
	if err := s.Feed(ctx, 3); err != nil {
		t.Fatal(err)
	}
	// Item 2 gets a pass; 1 and 3 get no verdict, so the gate rejects them.
	for want := uint32(1); want <= 3; want++ {
		e := next(t, d, kind(plc.EventItem))
		if e.Item != want {
			t.Fatalf("item %v, want %d", e, want)
		}
		if e.Item == 2 {
			if err := d.WriteVerdict(ctx, plc.Verdict{Item: 2, Result: plc.ResultPass}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := gateEvents(t, d, 3)
	wantEvents(t, got, "gate #1 item 1 rejected", "gate #2 item 2 passed", "gate #3 item 3 rejected")
	count, recs := s.GateOutcomes()
	var plcSide []string
	for i, r := range recs {
		plcSide = append(plcSide, fmt.Sprintf("gate #%d item %d %s", int(count)-len(recs)+i+1, r.Item, plc.GateOutcome(r.Outcome)))
	}
	wantEvents(t, got, plcSide...)
}
