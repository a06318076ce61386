package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// startManual starts a simulator whose units come only from Feed.
func startManual(t *testing.T, cfg sim.Config) *sim.Sim {
	t.Helper()
	return startSim(t, cfg, sim.ManualInfeed())
}

// startSim starts a simulator, closed when the test ends.
func startSim(t *testing.T, cfg sim.Config, opts ...sim.Option) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runBatch lets the test controller decide every unit of s's batch over
// Modbus and returns the ground truth once the batch is done, checked.
func runBatch(ctx context.Context, t *testing.T, s *sim.Sim) sim.GroundTruth {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go controller(cctx, t, s.Endpoints().Modbus)
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("batch did not finish")
	}
	gt := s.GroundTruth()
	if err := gt.Check(); err != nil {
		t.Fatalf("ground truth inconsistent:\n%v", err)
	}
	return gt
}

// modbusClient connects a plain Modbus TCP client (unit id 1) to addr.
func modbusClient(t *testing.T, addr string) *mb.ModbusClient {
	t.Helper()
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUnitId(sim.ModbusUnitID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// uaClient connects a plain gopcua client (security None) to endpoint.
func uaClient(t *testing.T, endpoint string) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opcua.NewClient(endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Verdict results as the PLC takes them; 0 = write no verdict.
const (
	pass   = 1
	reject = 2
)

// writeVerdicts writes a verdict for each item (result pass or reject,
// reason 5 for a reject) in one FC16 each, before the units are fed: the
// PLC keeps them in its shift register until the units reach the gate.
func writeVerdicts(t *testing.T, c *mb.ModbusClient, results map[uint32]uint16) {
	t.Helper()
	for item, r := range results {
		if r == 0 {
			continue
		}
		reason := uint16(0)
		if r == reject {
			reason = 5
		}
		if err := c.WriteRegisters(sim.HRVerdict, []uint16{uint16(item >> 16), uint16(item), r, reason}); err != nil {
			t.Fatalf("verdict for item %d: %v", item, err)
		}
	}
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// ringModbus reads the gate ring in one FC04 of input registers
// IRGateCount..IRCount-1.
func ringModbus(t *testing.T, c *mb.ModbusClient) (uint32, [sim.GateRingSize]sim.GateRecord) {
	t.Helper()
	regs, err := c.ReadRegisters(sim.IRGateCount, sim.IRCount-sim.IRGateCount, mb.INPUT_REGISTER)
	if err != nil {
		t.Fatal(err)
	}
	var ring [sim.GateRingSize]sim.GateRecord
	for i := range ring {
		r := regs[2+3*i:]
		ring[i] = sim.GateRecord{Item: uint32(r[0])<<16 | uint32(r[1]), Outcome: sim.GateOutcome(r[2])}
	}
	return uint32(regs[0])<<16 | uint32(regs[1]), ring
}

// ringOPCUA reads PLC.GateOutcomes.
func ringOPCUA(t *testing.T, c *opcua.Client) (uint32, [sim.GateRingSize]sim.GateRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rr, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.MustParseNodeID("ns=1;s=" + sim.NodeGateOutcomes), AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Results[0].Status != ua.StatusOK {
		t.Fatalf("read %s: %v", sim.NodeGateOutcomes, rr.Results[0].Status)
	}
	a, ok := rr.Results[0].Value.Value().([]uint32)
	if !ok || len(a) != 1+2*sim.GateRingSize {
		t.Fatalf("%s = %T %v, want UInt32[%d]", sim.NodeGateOutcomes, rr.Results[0].Value.Value(), a, 1+2*sim.GateRingSize)
	}
	var ring [sim.GateRingSize]sim.GateRecord
	for i := range ring {
		ring[i] = sim.GateRecord{Item: a[1+2*i], Outcome: sim.GateOutcome(a[2+2*i])}
	}
	return a[0], ring
}

// outcomesFromRing returns the outcomes number from..count (1-based) of a
// ring snapshot by the slot rule, as "item:outcome" strings.
func outcomesFromRing(count uint32, ring [sim.GateRingSize]sim.GateRecord, from uint32) []string {
	var out []string
	for s := from; s <= count; s++ {
		r := ring[(s-1)%sim.GateRingSize]
		out = append(out, fmt.Sprintf("%d:%s", r.Item, r.Outcome))
	}
	return out
}
