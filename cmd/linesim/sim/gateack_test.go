package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// The gate ring's acknowledgement: once the controller has written one,
// the PLC holds the infeed rather than let the units still to come
// overwrite an outcome not acknowledged (a controller that died with
// outcomes unjournaled finds them all in the ring when it restarts); a
// new acknowledgement, here over OPC UA, releases it. The crash campaign
// found good units' codes taken back because the ring had moved on while
// the controller was down.
func TestGateAckHoldsTheInfeed(t *testing.T) {
	off := time.Duration(0) // the watchdog would stop the infeed too: only the ring's rule here
	s := startSim(t, sim.Config{Seed: 1, Rate: 3000, ControllerWatchdog: &off})
	ep := s.Endpoints()
	m := modbusClient(t, ep.Modbus)
	u := uaClient(t, ep.PLCOPCUA)
	waitFor(t, "some outcomes at the gate", func() bool { return s.PLC().GateCount >= 5 })
	if s.PLC().GateRingFull {
		t.Fatal("infeed held before any acknowledgement")
	}
	ack := uint16(s.PLC().GateCount)
	if err := m.WriteRegister(sim.HRGateAck, ack); err != nil {
		t.Fatal(err)
	}
	// The controller acknowledges nothing more (it died): the infeed stops
	// and the belt runs out to the gate.
	waitFor(t, "the infeed held on the ring", func() bool { st := s.PLC(); return st.GateRingFull && !st.Running })
	// The ground truth's infeed counts the pitches it stood still, and
	// every unit it put on the belt.
	if gt := s.GroundTruth(); gt.Infeed.HeldSlots == 0 || gt.Infeed.Units != len(gt.Units) || gt.Infeed.Rate <= 0 {
		t.Fatalf("infeed %+v with %d units on the belt: want held slots counted and every unit", gt.Infeed, len(gt.Units))
	}
	waitFor(t, "the belt run out to the gate", func() bool {
		gt, n := s.GroundTruth(), s.PLC().ItemCounter
		for _, un := range gt.Units {
			if un.Item <= n && un.Gate == sim.GateNone && un.Fate != sim.FateMissing {
				return false
			}
		}
		return true
	})
	count, ring := s.GateOutcomes()
	if unacked := count - uint32(ack); unacked > sim.GateRingSize || unacked < sim.GateRingSize-8 {
		t.Fatalf("%d outcomes after the acknowledged #%d, want the ring filled (%d) and not overrun", unacked, ack, sim.GateRingSize)
	}
	if oldest := count - uint32(len(ring)) + 1; oldest > uint32(ack)+1 {
		t.Fatalf("the ring's oldest outcome is #%d: #%d, the first not acknowledged, was overwritten", oldest, ack+1)
	}
	if regs, err := m.ReadRegisters(sim.HRGateAck, 1, mb.HOLDING_REGISTER); err != nil || regs[0] != ack {
		t.Fatalf("holding %d = %v %v, want %d", sim.HRGateAck, regs, err, ack)
	}

	// A restarted controller journals the ring and acknowledges it all.
	stopped := s.PLC().ItemCounter
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := u.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ua.MustParseNodeID("ns=1;s=" + sim.NodeGateAck),
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(uint16(count))},
	}}})
	if err != nil || res.Results[0] != ua.StatusOK {
		t.Fatalf("write %s: %v %v", sim.NodeGateAck, res, err)
	}
	waitFor(t, "the infeed to resume", func() bool { return s.PLC().ItemCounter > stopped && !s.PLC().GateRingFull })
}
