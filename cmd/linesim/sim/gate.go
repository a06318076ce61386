package sim

import (
	"fmt"
)

// GateOutcome is what physically happened to a unit at the reject gate, as
// the gate's confirmation sensor tells the PLC. The numbers are the values
// in the PLC's gate ring (Modbus input registers from IRGateRing, OPC UA
// PLC.GateOutcomes).
type GateOutcome uint16

const (
	GateNone         GateOutcome = 0 // not at the gate (yet), or never: fell off before it
	GatePassed       GateOutcome = 1 // went on as good
	GateRejected     GateOutcome = 2 // pushed into the reject bin
	GateRejectFailed GateOutcome = 3 // should have been rejected (reject or no verdict) but went on
	GateBinFull      GateOutcome = 4 // should have been rejected but went on: the reject bin is full
)

// GateRingSize is how many gate outcomes the PLC keeps.
const GateRingSize = 32

var gateNames = [...]string{GateNone: "none", GatePassed: "passed", GateRejected: "rejected",
	GateRejectFailed: "reject-failed", GateBinFull: "bin-full"}

func (o GateOutcome) String() string {
	if int(o) < len(gateNames) {
		return gateNames[o]
	}
	return fmt.Sprintf("GateOutcome(%d)", uint16(o))
}

// Escaped says whether a unit with this outcome went on although it should
// have been rejected.
func (o GateOutcome) Escaped() bool { return o == GateRejectFailed || o == GateBinFull }

// MarshalText writes the outcome's name (the ground truth's "gate" field).
func (o GateOutcome) MarshalText() ([]byte, error) {
	if int(o) >= len(gateNames) {
		return nil, fmt.Errorf("gate outcome %d is not 0..%d", uint16(o), len(gateNames)-1)
	}
	return []byte(gateNames[o]), nil
}

// UnmarshalText reads an outcome's name.
func (o *GateOutcome) UnmarshalText(b []byte) error {
	for i, n := range gateNames {
		if n == string(b) {
			*o = GateOutcome(i)
			return nil
		}
	}
	return fmt.Errorf("gate outcome %q is not none, passed, rejected, reject-failed or bin-full", b)
}

// GateRecord is one entry of the PLC's gate ring.
type GateRecord struct {
	Item    uint32      `json:"item"`
	Outcome GateOutcome `json:"outcome"`
}

// gateRing is the PLC's ring of the last GateRingSize outcomes: outcome
// number s (1-based) is in slot (s-1) % GateRingSize.
type gateRing struct {
	count uint32
	slots [GateRingSize]GateRecord
}

func (r *gateRing) add(rec GateRecord) {
	r.slots[r.count%GateRingSize] = rec
	r.count++
}

// last returns the newest record (zero if none).
func (r *gateRing) last() GateRecord {
	if r.count == 0 {
		return GateRecord{}
	}
	return r.slots[(r.count-1)%GateRingSize]
}

// registers is the ring as Modbus input registers IRGateCount..IRCount-1:
// count u32 (high word first), then per slot item u32 (high word first)
// and outcome u16.
func (r *gateRing) registers() []uint16 {
	regs := make([]uint16, 0, 2+3*GateRingSize)
	regs = append(regs, u32(r.count)...)
	for _, s := range r.slots {
		regs = append(regs, u32(s.Item)...)
		regs = append(regs, uint16(s.Outcome))
	}
	return regs
}

// array is the ring as the OPC UA node's UInt32[1+2*GateRingSize]:
// {count, item_0, outcome_0, …}.
func (r *gateRing) array() []uint32 {
	a := make([]uint32, 0, 1+2*GateRingSize)
	a = append(a, r.count)
	for _, s := range r.slots {
		a = append(a, s.Item, uint32(s.Outcome))
	}
	return a
}
