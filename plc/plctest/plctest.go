// Package plctest is a hand-written fake plc.PLC for the line's tests: the
// test pushes input events with Emit and inspects the verdicts and outputs
// the line wrote; failures are injected with FailWrites. It speaks no
// protocol. Only tests import it.
package plctest

import (
	"context"
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
	written   chan struct{} // signalled (non-blocking) after each write
}

var _ plc.PLC = (*PLC)(nil)

// New makes a fake with an event buffer of n.
func New(n int) *PLC {
	return &PLC{events: make(chan plc.Event, n), written: make(chan struct{}, 1)}
}

// Emit queues input events as the driver would deliver them (blocks when
// the buffer is full). Events without a time get time.Now().
func (p *PLC) Emit(evs ...plc.Event) {
	for _, e := range evs {
		if e.At.IsZero() {
			e.At = time.Now()
		}
		p.events <- e
	}
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

// WriteVerdict implements plc.PLC.
func (p *PLC) WriteVerdict(ctx context.Context, v plc.Verdict) error {
	if err := v.Validate(); err != nil {
		return err
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
