package link

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tracline/tracline/plc"
)

// GateSnapshot is one atomic reading of the PLC's gate ring: Count outcomes
// so far, and the ring's entries (Items[i], Outcomes[i] for slot i).
// Outcome number s (1-based, s ≤ Count) is in slot (s-1) % len(Items).
type GateSnapshot struct {
	Count    uint32
	Items    []uint32
	Outcomes []uint32 // raw: anything outside 1..4 is the PLC's error
}

// GateFromRegisters decodes a Modbus gate ring of n entries: count u32, then
// n × (item u32, outcome u16), 32-bit values in the word order (lowFirst:
// the first register holds the low word).
func GateFromRegisters(regs []uint16, n int, lowFirst bool) (GateSnapshot, error) {
	if n < 1 || n > plc.MaxGateRing {
		return GateSnapshot{}, fmt.Errorf("gate ring of %d entries: length must be 1..%d", n, plc.MaxGateRing)
	}
	if want := 2 + 3*n; len(regs) != want {
		return GateSnapshot{}, fmt.Errorf("gate ring of %d entries: %d registers, want %d", n, len(regs), want)
	}
	u32 := func(a, b uint16) uint32 {
		if lowFirst {
			return uint32(b)<<16 | uint32(a)
		}
		return uint32(a)<<16 | uint32(b)
	}
	g := GateSnapshot{Count: u32(regs[0], regs[1]), Items: make([]uint32, n), Outcomes: make([]uint32, n)}
	for i := range n {
		e := regs[2+3*i:]
		g.Items[i], g.Outcomes[i] = u32(e[0], e[1]), uint32(e[2])
	}
	return g, nil
}

// GateFromArray decodes an OPC UA gate ring of n entries:
// {count, item_0, outcome_0, item_1, outcome_1, …} (1+2n values).
func GateFromArray(a []uint32, n int) (GateSnapshot, error) {
	if n < 1 || n > plc.MaxGateRing {
		return GateSnapshot{}, fmt.Errorf("gate ring of %d entries: length must be 1..%d", n, plc.MaxGateRing)
	}
	if want := 1 + 2*n; len(a) != want {
		return GateSnapshot{}, fmt.Errorf("gate ring of %d entries: array of %d values, want %d {count, item, outcome, …}", n, len(a), want)
	}
	g := GateSnapshot{Count: a[0], Items: make([]uint32, n), Outcomes: make([]uint32, n)}
	for i := range n {
		g.Items[i], g.Outcomes[i] = a[1+2*i], a[2+2*i]
	}
	return g, nil
}

// GateTracker turns successive gate-ring snapshots into gate events. It
// starts knowing no outcome (last = 0), so the first snapshot reports the
// whole ring.
type GateTracker struct {
	last uint64
}

// Last is the number of the last outcome reported (0: none yet).
func (t *GateTracker) Last() uint64 { return t.last }

// Observe takes one snapshot and returns the events it implies, in order:
// a reset if the count went backwards, a gap if more than the ring's length
// of outcomes arrived since the last snapshot, then one EventGate (or
// EventGateError for a nonsense outcome) per new outcome in increasing Seq.
// A snapshot of the wrong shape is one EventGateError and changes nothing.
func (t *GateTracker) Observe(g GateSnapshot, at time.Time) []plc.Event {
	n := uint64(len(g.Items))
	if n == 0 || len(g.Outcomes) != len(g.Items) {
		return []plc.Event{{Kind: plc.EventGateError, At: at,
			Err: fmt.Errorf("gate ring snapshot with %d items and %d outcomes", len(g.Items), len(g.Outcomes))}}
	}
	count := uint64(g.Count)
	var evs []plc.Event
	if count < t.last {
		evs = append(evs, plc.Event{Kind: plc.EventGateReset, At: at, Seq: count})
		t.last = 0
	}
	if count == t.last {
		return evs
	}
	first := t.last + 1
	if count-t.last > n {
		first = count - n + 1
		evs = append(evs, plc.Event{Kind: plc.EventGateGap, At: at, From: uint32(t.last + 1), To: uint32(first - 1)})
	}
	for s := first; s <= count; s++ {
		slot := (s - 1) % n
		item, raw := g.Items[slot], g.Outcomes[slot]
		o := plc.GateOutcome(raw)
		switch o {
		case plc.GatePassed, plc.GateRejected, plc.GateRejectFailed, plc.GateBinFull:
			evs = append(evs, plc.Event{Kind: plc.EventGate, At: at, Seq: s, Item: item, Outcome: o})
		default:
			evs = append(evs, plc.Event{Kind: plc.EventGateError, At: at, Seq: s, Item: item,
				Err: fmt.Errorf("gate outcome #%d (ring slot %d, item %d): value %d is not 1 (passed), 2 (rejected), 3 (reject failed) or 4 (bin full)", s, slot, item, raw)})
		}
	}
	t.last = count
	return evs
}

// LogGate logs the gate events a PLC engineer must see in the controller's
// log too: lost outcomes, a ring reset, nonsense from the PLC.
func LogGate(log *slog.Logger, evs []plc.Event) {
	for _, e := range evs {
		if e.Kind == plc.EventGateGap || e.Kind == plc.EventGateReset {
			log.Warn("gate ring", "event", e.String())
		} else if e.Kind == plc.EventGateError {
			log.Error("gate ring", "err", e.Err)
		}
	}
}
