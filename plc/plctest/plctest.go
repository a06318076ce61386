// Package plctest is a hand-written fake plc.PLC for the line's tests: the
// test pushes input events with Emit (or the helpers Items, Gate, GateRing,
// GateGap, GateReset, LinkDown, LinkUp) and inspects the verdicts and
// outputs the line wrote; failures are injected with FailWrites. Like the
// drivers, it refuses verdicts with plc.ErrNotConnected from an emitted
// EventLinkDown to the next EventLinkUp, while Set goes on. It speaks no
// protocol. Only tests import it.
package plctest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tracline/tracline/plc"
)

// Call is one recorded write.
type Call struct {
	Verdict *plc.Verdict // WriteVerdict
	Output  plc.Output   // Set
	Value   int          // Set
}

func (c Call) String() string {
	if c.Verdict != nil {
		return fmt.Sprintf("verdict item %d %s reason %d", c.Verdict.Item, c.Verdict.Result, c.Verdict.Reason)
	}
	return fmt.Sprintf("set %s=%d", c.Output, c.Value)
}

// PLC is the fake. The zero value is not usable; use New.
type PLC struct {
	events chan plc.Event

	mu        sync.Mutex
	calls     []Call
	failWrite error
	closed    bool
	down      bool          // an EventLinkDown was emitted, no EventLinkUp since
	written   chan struct{} // signalled (non-blocking) after each write
}

var _ plc.PLC = (*PLC)(nil)

// New makes a fake with an event buffer of n.
func New(n int) *PLC {
	return &PLC{events: make(chan plc.Event, n), written: make(chan struct{}, 1)}
}

// Emit queues input events as the driver would deliver them (blocks when
// the buffer is full). Events without a time get time.Now(). An
// EventLinkDown makes WriteVerdict fail with plc.ErrNotConnected until an
// EventLinkUp is emitted (the fake starts up).
func (p *PLC) Emit(evs ...plc.Event) {
	for _, e := range evs {
		if e.At.IsZero() {
			e.At = time.Now()
		}
		if e.Kind == plc.EventLinkDown || e.Kind == plc.EventLinkUp {
			p.mu.Lock()
			p.down = e.Kind == plc.EventLinkDown
			p.mu.Unlock()
		}
		p.events <- e
	}
}

// LinkDown emits EventLinkDown with err (a default reason if nil).
func (p *PLC) LinkDown(err error) {
	if err == nil {
		err = errors.New("plctest: link down")
	}
	p.Emit(plc.Event{Kind: plc.EventLinkDown, Err: err})
}

// LinkUp emits EventLinkUp.
func (p *PLC) LinkUp() { p.Emit(plc.Event{Kind: plc.EventLinkUp}) }

// Gate emits one EventGate: outcome number seq was o for item.
func (p *PLC) Gate(seq uint64, item uint32, o plc.GateOutcome) {
	p.Emit(plc.Event{Kind: plc.EventGate, Seq: seq, Item: item, Outcome: o})
}

// Outcome is one entry of a simulated gate ring for GateRing.
type Outcome struct {
	Item    uint32
	Outcome plc.GateOutcome
}

// GateRing emits EventGate for consecutive outcome numbers first,
// first+1, … — what a driver reports from one ring snapshot.
func (p *PLC) GateRing(first uint64, outs ...Outcome) {
	for i, o := range outs {
		p.Gate(first+uint64(i), o.Item, o.Outcome)
	}
}

// GateGap emits EventGateGap: outcome numbers from..to were lost.
func (p *PLC) GateGap(from, to uint32) {
	p.Emit(plc.Event{Kind: plc.EventGateGap, From: from, To: to})
}

// GateReset emits EventGateReset: the PLC's outcome count is now count.
func (p *PLC) GateReset(count uint64) {
	p.Emit(plc.Event{Kind: plc.EventGateReset, Seq: count})
}

// GateError emits EventGateError for outcome number seq of item with the
// nonsense value raw (worded much as the drivers word it).
func (p *PLC) GateError(seq uint64, item uint32, raw int) {
	p.Emit(plc.Event{Kind: plc.EventGateError, Seq: seq, Item: item,
		Err: fmt.Errorf("gate outcome #%d (item %d): value %d is not 1 (passed), 2 (rejected), 3 (reject failed) or 4 (bin full)", seq, item, raw)})
}

// Items emits EventItem for each id.
func (p *PLC) Items(ids ...uint32) {
	for _, id := range ids {
		p.Emit(plc.Event{Kind: plc.EventItem, Item: id})
	}
}

// FailWrites makes every following write return err (nil heals).
func (p *PLC) FailWrites(err error) {
	p.mu.Lock()
	p.failWrite = err
	p.mu.Unlock()
}

// Calls returns the writes so far, in order.
func (p *PLC) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// Verdicts returns the verdicts written so far, in order.
func (p *PLC) Verdicts() []plc.Verdict {
	var vs []plc.Verdict
	for _, c := range p.Calls() {
		if c.Verdict != nil {
			vs = append(vs, *c.Verdict)
		}
	}
	return vs
}

// WaitWrites waits until at least n writes were recorded or ctx ends.
func (p *PLC) WaitWrites(ctx context.Context, n int) ([]Call, error) {
	for {
		if cs := p.Calls(); len(cs) >= n {
			return cs, nil
		}
		select {
		case <-p.written:
		case <-ctx.Done():
			return p.Calls(), fmt.Errorf("plctest: %d of %d writes: %w", len(p.Calls()), n, ctx.Err())
		}
	}
}

// Events implements plc.PLC.
func (p *PLC) Events() <-chan plc.Event { return p.events }

// WriteVerdict implements plc.PLC. It fails with plc.ErrNotConnected while
// the last emitted link event was EventLinkDown.
func (p *PLC) WriteVerdict(ctx context.Context, v plc.Verdict) error {
	if err := v.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		return fmt.Errorf("plctest: verdict item %d: %w", v.Item, plc.ErrNotConnected)
	}
	return p.record(ctx, Call{Verdict: &v})
}

// Set implements plc.PLC.
func (p *PLC) Set(ctx context.Context, o plc.Output, value int) error {
	if err := plc.CheckOutputValue(o, value); err != nil {
		return err
	}
	return p.record(ctx, Call{Output: o, Value: value})
}

func (p *PLC) record(ctx context.Context, c Call) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return plc.ErrClosed
	}
	if p.failWrite != nil {
		return p.failWrite
	}
	p.calls = append(p.calls, c)
	select {
	case p.written <- struct{}{}:
	default:
	}
	return nil
}

// Close implements plc.PLC: the events channel is closed.
func (p *PLC) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.events)
	}
	return nil
}
