// Package plc connects the line to its PLC: the item trigger, line-running and
// heartbeat inputs, and the verdict, stop-request, alarm and tower-light
// outputs, reached over Modbus TCP (plc/modbus) or OPC UA (plc/opcua) through
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
	// ErrNotConnected while the link is down.
	WriteVerdict(ctx context.Context, v Verdict) error
	// Set writes one output signal (stop request, alarm, tower light). Bool
	// outputs take 0 or 1; the tower light takes a Tower value.
	Set(ctx context.Context, o Output, value int) error
	// Close stops the driver and closes its Events channel. Safe to call
	// more than once and after a failed Connect.
	Close() error
}

// Sentinel errors callers branch on.
var (
	// ErrNotConnected: the link is down (reconnecting); the write was not sent.
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
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one input from the PLC.
type Event struct {
	Kind    EventKind
	At      time.Time // when the driver saw it
	Item    uint32    // EventItem, EventCounterReset
	Late    bool      // EventItem recovered from a counter jump
	From    uint32    // EventGap: first missing item
	To      uint32    // EventGap: last missing item
	Running bool      // EventRunning
	Err     error     // EventLinkDown
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
	}
	return e.Kind.String()
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
)

func (o Output) String() string {
	switch o {
	case OutStopRequest:
		return SigStopRequest
	case OutAlarm:
		return SigAlarm
	case OutTowerLight:
		return SigTowerLight
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
	}
	return fmt.Errorf("plc: unknown output %d", int(o))
}
