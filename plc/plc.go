// Package plc connects the line to its PLC: the item trigger, line-running,
// heartbeat and gate-outcome inputs, and the verdict, stop-request, alarm,
// tower-light and controller-alive outputs, reached over Modbus TCP (plc/modbus) or OPC UA (plc/opcua) through
// a signal map written in config, not code.
//
// The line (package line) and cmd/ may import it. Implementations live in the
// subpackages; plc/plctest holds a hand-written fake for the line's tests.
// No vendor type (Modbus client, OPC UA node id) appears in this package's
// API: callers speak items, verdicts and signals.
//
// Every driver delivers its inputs as ordered Events on one channel
// (Events()), including explicit gap, link-down and link-up events, and every
// call takes a ctx and returns: a PLC that stops answering becomes an
// EventLinkDown (the line holds), never a hang.
package plc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PLC is what the line needs from its PLC. Implementations: plc/modbus,
// plc/opcua, plc/plctest.
type PLC interface {
	// Events delivers input events in order. The channel is closed after
	// Close. A slow reader delays polling; it never loses events (skipped
	// item ids are reported as items or as a gap, see EventKind).
	Events() <-chan Event
	// WriteVerdict writes item id, result and reason in one protocol write
	// (one Modbus FC16, one OPC UA Write of one node). It fails fast with
	// ErrNotConnected while the link is reported down for any reason —
	// transport lost or heartbeat stale (the PLC program is not running, a
	// verdict would mean nothing) — from the EventLinkDown to the next
	// EventLinkUp.
	WriteVerdict(ctx context.Context, v Verdict) error
	// Set writes one output signal (stop request, alarm, tower light,
	// controller alive). Unlike WriteVerdict it is attempted whenever the
	// transport is connected, also while the heartbeat is stale (so that a
	// PLC program that comes back sees the stop request at once); it fails
	// fast with ErrNotConnected only while the transport is down. Values:
	// see CheckOutputValue.
	Set(ctx context.Context, o Output, value int) error
	// Close stops the driver and closes its Events channel. Safe to call
	// more than once and after a failed Connect.
	Close() error
}

// Sentinel errors callers branch on.
var (
	// ErrNotConnected: the link is down (reconnecting, or for WriteVerdict
	// also a stale heartbeat); the write was not sent.
	ErrNotConnected = errors.New("plc: not connected")
	// ErrNoSignal: the output asked for is not mapped in config.
	ErrNoSignal = errors.New("plc: signal not mapped")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("plc: closed")
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventItem: a unit passed the trigger; Item is its id. Items arrive in
	// increasing order. Late is true when the driver recovered the item from
	// a counter jump (polled too slowly or after a reconnect) rather than
	// seeing it directly.
	EventItem EventKind = iota + 1
	// EventGap: items From..To (inclusive) passed but the driver cannot
	// vouch for them (jump larger than the catch-up limit). The line must
	// reject them.
	EventGap
	// EventCounterReset: the item counter went backwards (PLC restart or
	// counter wrap); Item is the new value. Items before it are unaffected.
	EventCounterReset
	// EventRunning: the line-running input changed; Running is its value.
	EventRunning
	// EventLinkDown: the PLC stopped answering (read error, dead
	// subscription, stale heartbeat). Err says why. The line must hold.
	EventLinkDown
	// EventLinkUp: the link is back (first connect or reconnect).
	EventLinkUp
	// EventGate: the PLC confirmed what physically happened at the reject
	// gate to unit Item: Outcome. Seq is the outcome's number in the PLC's
	// gate ring (1-based, +1 per unit at the gate). Gate events arrive in
	// increasing Seq. After the driver starts, the first snapshot of the
	// ring reports every outcome still in it (up to the ring's length),
	// also those from before the controller's restart — on purpose: the
	// line resolves its provisional commissions from them. The same Seq is
	// never reported twice by one driver, except after an EventGateReset.
	EventGate
	// EventGateGap: outcomes From..To (inclusive, outcome numbers, not
	// items) were lost: they left the PLC's ring before the driver read it
	// (a reconnect after more than the ring's length of units, or the first
	// snapshot after the driver started). Their items are unknown; the line
	// must treat every unit still waiting for an outcome it does not get as
	// unconfirmed.
	EventGateGap
	// EventGateReset: the PLC's outcome count went backwards (PLC restart,
	// ring cleared). Seq is the count the PLC reports now. Outcomes the PLC
	// had counted beyond the last one reported are lost. The events that
	// follow number outcomes from the PLC's new count (a snapshot's
	// outcomes follow at once, as after a start).
	EventGateReset
	// EventGateError: the PLC reported nonsense in its gate ring: an outcome
	// value outside 1..4 (then Seq and Item are the entry's), or a snapshot
	// of the wrong shape (Seq 0). Err names the value and the slot. It is
	// never a valid outcome: the line must treat the unit as unconfirmed.
	EventGateError
)

func (k EventKind) String() string {
	switch k {
	case EventItem:
		return "item"
	case EventGap:
		return "gap"
	case EventCounterReset:
		return "counter-reset"
	case EventRunning:
		return "running"
	case EventLinkDown:
		return "link-down"
	case EventLinkUp:
		return "link-up"
	case EventGate:
		return "gate"
	case EventGateGap:
		return "gate-gap"
	case EventGateReset:
		return "gate-reset"
	case EventGateError:
		return "gate-error"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one input from the PLC.
type Event struct {
	Kind    EventKind
	At      time.Time   // when the driver saw it
	Item    uint32      // EventItem, EventCounterReset; EventGate, EventGateError: the unit
	Late    bool        // EventItem recovered from a counter jump
	From    uint32      // EventGap: first missing item; EventGateGap: first lost outcome number
	To      uint32      // EventGap: last missing item; EventGateGap: last lost outcome number
	Running bool        // EventRunning
	Err     error       // EventLinkDown, EventGateError
	Seq     uint64      // EventGate, EventGateError: the outcome's number; EventGateReset: the PLC's new count
	Outcome GateOutcome // EventGate (always one of the four GateOutcome values)
}

func (e Event) String() string {
	switch e.Kind {
	case EventItem:
		if e.Late {
			return fmt.Sprintf("item %d (late)", e.Item)
		}
		return fmt.Sprintf("item %d", e.Item)
	case EventGap:
		return fmt.Sprintf("gap %d..%d", e.From, e.To)
	case EventCounterReset:
		return fmt.Sprintf("counter-reset to %d", e.Item)
	case EventRunning:
		return fmt.Sprintf("running=%t", e.Running)
	case EventLinkDown:
		return fmt.Sprintf("link-down: %v", e.Err)
	case EventLinkUp:
		return "link-up"
	case EventGate:
		return fmt.Sprintf("gate #%d item %d %s", e.Seq, e.Item, e.Outcome)
	case EventGateGap:
		return fmt.Sprintf("gate-gap #%d..#%d", e.From, e.To)
	case EventGateReset:
		return fmt.Sprintf("gate-reset to count %d", e.Seq)
	case EventGateError:
		return fmt.Sprintf("gate-error: %v", e.Err)
	}
	return e.Kind.String()
}

// GateOutcome is what the PLC's reject-confirm sensor saw happen to one unit
// at the reject gate.
type GateOutcome int

const (
	// GatePassed: the unit went on as good.
	GatePassed GateOutcome = 1
	// GateRejected: the unit is confirmed in the reject bin.
	GateRejected GateOutcome = 2
	// GateRejectFailed: the unit should have been rejected (reject verdict
	// or no verdict) and went on.
	GateRejectFailed GateOutcome = 3
	// GateBinFull: the unit should have been rejected and went on because
	// the reject bin is full.
	GateBinFull GateOutcome = 4
)

func (o GateOutcome) String() string {
	switch o {
	case GatePassed:
		return "passed"
	case GateRejected:
		return "rejected"
	case GateRejectFailed:
		return "reject-failed"
	case GateBinFull:
		return "bin-full"
	}
	return fmt.Sprintf("GateOutcome(%d)", int(o))
}

// Result is the verdict's outcome as the PLC sees it.
type Result int

const (
	// ResultNone (0) is never written; a PLC reads it as "no verdict yet".
	ResultNone Result = 0
	// ResultPass lets the unit through the reject gate.
	ResultPass Result = 1
	// ResultReject fires the reject gate for the unit.
	ResultReject Result = 2
)

func (r Result) String() string {
	switch r {
	case ResultNone:
		return "none"
	case ResultPass:
		return "pass"
	case ResultReject:
		return "reject"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Verdict is the controller's decision for one item, written atomically.
type Verdict struct {
	Item   uint32
	Result Result
	// Reason is the line's reject reason code (0 for a pass); the PLC only
	// displays and counts it.
	Reason uint16
}

// Validate says whether v can be written.
func (v Verdict) Validate() error {
	switch v.Result {
	case ResultPass, ResultReject:
		return nil
	case ResultNone:
		return fmt.Errorf("plc: verdict for item %d has no result", v.Item)
	}
	return fmt.Errorf("plc: verdict for item %d: unknown result %d", v.Item, int(v.Result))
}

// Output names a writable signal other than the verdict.
type Output int

const (
	// OutStopRequest asks the PLC to stop the line (1) or lets it run (0).
	OutStopRequest Output = iota + 1
	// OutAlarm sets (1) or clears (0) the alarm horn / alarm bit.
	OutAlarm
	// OutTowerLight sets the tower light to a Tower value.
	OutTowerLight
	// OutControllerAlive is the controller's heartbeat to the PLC: the
	// controller writes a changing counter (0..65535) every ~250 ms and the
	// PLC's watchdog stops the infeed when it stops changing. A u16 signal
	// gets the value; a bool signal gets value%2 (a toggle).
	OutControllerAlive
	// OutGateAck acknowledges the gate ring: the number (mod 65536) of the
	// last gate outcome (EventGate's Seq) the controller has journaled,
	// every earlier one journaled or lost. A PLC that supports it holds
	// the infeed rather than overwrite an outcome not acknowledged.
	OutGateAck
)

func (o Output) String() string {
	switch o {
	case OutStopRequest:
		return SigStopRequest
	case OutAlarm:
		return SigAlarm
	case OutTowerLight:
		return SigTowerLight
	case OutControllerAlive:
		return SigControllerAlive
	case OutGateAck:
		return SigGateAck
	}
	return fmt.Sprintf("Output(%d)", int(o))
}

// Tower is the tower light's state, written as a small integer.
type Tower int

const (
	TowerOff   Tower = 0
	TowerGreen Tower = 1
	TowerAmber Tower = 2
	TowerRed   Tower = 3
)

func (t Tower) String() string {
	switch t {
	case TowerOff:
		return "off"
	case TowerGreen:
		return "green"
	case TowerAmber:
		return "amber"
	case TowerRed:
		return "red"
	}
	return fmt.Sprintf("Tower(%d)", int(t))
}

// CheckOutputValue validates the value given to Set for o.
func CheckOutputValue(o Output, value int) error {
	switch o {
	case OutStopRequest, OutAlarm:
		if value != 0 && value != 1 {
			return fmt.Errorf("plc: %s takes 0 or 1, not %d", o, value)
		}
		return nil
	case OutTowerLight:
		if value < int(TowerOff) || value > int(TowerRed) {
			return fmt.Errorf("plc: %s takes 0..3 (off, green, amber, red), not %d", o, value)
		}
		return nil
	case OutControllerAlive, OutGateAck:
		if value < 0 || value > 65535 {
			return fmt.Errorf("plc: %s takes 0..65535 (a counter), not %d", o, value)
		}
		return nil
	}
	return fmt.Errorf("plc: unknown output %d", int(o))
}

// IntervalReporter is an optional ability of a driver (find it by type
// assertion): the period at which the driver learns of input changes — the
// Modbus poll period, or the OPC UA publishing interval the server granted
// (which may differ from the one asked for in config).
type IntervalReporter interface {
	PublishingInterval() time.Duration
}
