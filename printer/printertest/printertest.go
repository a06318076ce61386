// Package printertest has hand-written fakes of printer.Coder and
// printer.Labeler for tests of the code that uses printers (the line's
// runner). They record calls and let the test play the printer's side:
// print, lose records, drop the link. Only tests import it.
package printertest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/tracecode"
)

// Coder is a fake coding printer. The zero value is not usable: use NewCoder.
type Coder struct {
	mu      sync.Mutex
	sent    [][]tracecode.Code
	pending []tracecode.Code
	seq     uint64
	flushes int
	closed  bool
	events  chan printer.Event

	// SendErr, when set, is returned by Send (nothing is taken).
	SendErr error
	// FlushErr, when set, is returned by Flush (nothing changes).
	FlushErr error
}

var _ printer.Coder = (*Coder)(nil)

// NewCoder makes a fake with an events buffer of n (default 1024).
func NewCoder(n int) *Coder {
	if n <= 0 {
		n = 1024
	}
	return &Coder{events: make(chan printer.Event, n)}
}

// Send records the codes and makes them pending, or returns SendErr.
func (c *Coder) Send(ctx context.Context, codes []tracecode.Code) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.SendErr != nil {
		return c.SendErr
	}
	if c.closed {
		return printer.ErrClosed
	}
	c.sent = append(c.sent, slices.Clone(codes))
	c.pending = append(c.pending, codes...)
	return nil
}

// Flush returns every pending code as unconfirmed, or FlushErr.
func (c *Coder) Flush(ctx context.Context) (printer.FlushResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.FlushErr != nil {
		return printer.FlushResult{}, c.FlushErr
	}
	c.flushes++
	res := printer.FlushResult{Unconfirmed: c.pending, Removed: slices.Clone(c.pending)}
	c.pending = nil
	return res, nil
}

// Events delivers what the test plays.
func (c *Coder) Events() <-chan printer.Event { return c.events }

// Close closes Events. Safe twice.
func (c *Coder) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.events)
	}
	return nil
}

// Sent returns every Send's codes, in order.
func (c *Coder) Sent() [][]tracecode.Code {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

// Pending returns the codes sent and not yet printed, lost or flushed.
func (c *Coder) Pending() []tracecode.Code {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pending)
}

// Flushes counts successful Flush calls.
func (c *Coder) Flushes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushes
}

// PrintNext prints the oldest pending code and reports it; false if none.
func (c *Coder) PrintNext(at time.Time) (tracecode.Code, bool) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return "", false
	}
	code := c.pending[0]
	c.pending = c.pending[1:]
	c.seq++
	ev := printer.Event{Kind: printer.EventPrinted, At: at, Code: code, Seq: c.seq}
	c.mu.Unlock()
	c.events <- ev
	return code, true
}

// Reprint reports code printed again (a duplicate) without touching pending.
func (c *Coder) Reprint(at time.Time, code tracecode.Code) {
	c.mu.Lock()
	c.seq++
	ev := printer.Event{Kind: printer.EventPrinted, At: at, Code: code, Seq: c.seq}
	c.mu.Unlock()
	c.events <- ev
}

// Lose reports n print records lost: the n oldest pending codes become
// uncertain, as the real driver reports them.
func (c *Coder) Lose(at time.Time, n int) []tracecode.Code {
	c.mu.Lock()
	n = min(n, len(c.pending))
	unc := slices.Clone(c.pending[:n])
	c.pending = c.pending[n:]
	c.seq += uint64(n)
	c.mu.Unlock()
	c.events <- printer.Event{Kind: printer.EventGap, At: at, Lost: n, Uncertain: unc}
	return unc
}

// Down and Up report link changes.
func (c *Coder) Down(at time.Time, err error) {
	c.events <- printer.Event{Kind: printer.EventDown, At: at, Err: err}
}

// Up: see Down.
func (c *Coder) Up(at time.Time) { c.events <- printer.Event{Kind: printer.EventUp, At: at} }

// Labeler is a fake label printer recording labels.
type Labeler struct {
	mu     sync.Mutex
	labels []printer.Label
	// Err, when set, is returned by PrintLabel (nothing is recorded).
	Err error
}

var _ printer.Labeler = (*Labeler)(nil)

// PrintLabel records l, or returns Err.
func (l *Labeler) PrintLabel(ctx context.Context, lb printer.Label) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Err != nil {
		return l.Err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.labels = append(l.labels, lb)
	return nil
}

// Labels returns the labels printed, in order.
func (l *Labeler) Labels() []printer.Label {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.labels)
}
