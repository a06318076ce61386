// Package link holds what the PLC drivers share: turning item-counter
// readings into ordered item / gap / reset events and gate-ring snapshots
// into gate events, the heartbeat watchdog, the reported link state,
// reconnect backoff and the event outbox. Only plc/... imports it.
package link

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracline/tracline/plc"
)

// Tracker turns successive readings of the item counter into events.
// The first reading is a baseline and yields nothing.
type Tracker struct {
	catchUp uint64
	modulus uint64 // 1<<16 for u16 counters, 1<<32 for u32
	last    uint32
	have    bool
}

// NewTracker makes a tracker for a counter of the given width (16 or 32 bits).
func NewTracker(catchUp int, bits int) *Tracker {
	m := uint64(1) << 32
	if bits == 16 {
		m = 1 << 16
	}
	return &Tracker{catchUp: uint64(catchUp), modulus: m}
}

// Observe takes one reading and returns the events it implies, in order.
func (t *Tracker) Observe(v uint32, at time.Time) []plc.Event {
	v = uint32(uint64(v) % t.modulus)
	if !t.have {
		t.have, t.last = true, v
		return nil
	}
	diff := (uint64(v) + t.modulus - uint64(t.last)) % t.modulus
	if diff == 0 {
		return nil
	}
	prev := t.last
	t.last = v
	if diff > t.modulus/2 {
		return []plc.Event{{Kind: plc.EventCounterReset, At: at, Item: v}}
	}
	next := func(x uint32, n uint64) uint32 { return uint32((uint64(x) + n) % t.modulus) }
	if diff <= t.catchUp || diff == 1 {
		evs := make([]plc.Event, 0, diff)
		for i := uint64(1); i <= diff; i++ {
			evs = append(evs, plc.Event{Kind: plc.EventItem, At: at, Item: next(prev, i), Late: i < diff})
		}
		return evs
	}
	return []plc.Event{
		{Kind: plc.EventGap, At: at, From: next(prev, 1), To: next(prev, diff-1)},
		{Kind: plc.EventItem, At: at, Item: v},
	}
}

// Last is the last counter value seen and whether there was one.
func (t *Tracker) Last() (uint32, bool) { return t.last, t.have }

// Heartbeat watches an input that must keep changing.
type Heartbeat struct {
	timeout    time.Duration
	last       uint32
	have       bool
	lastChange time.Time
}

// NewHeartbeat makes a watchdog that trips after timeout without a change.
func NewHeartbeat(timeout time.Duration) *Heartbeat { return &Heartbeat{timeout: timeout} }

// SetTimeout changes the limit (the OPC UA driver widens it by the
// publishing interval the server granted).
func (h *Heartbeat) SetTimeout(d time.Duration) { h.timeout = d }

// Reset forgets the last value; the timeout restarts at now.
func (h *Heartbeat) Reset(now time.Time) { h.have, h.lastChange = false, now }

// Observe records a reading.
func (h *Heartbeat) Observe(v uint32, now time.Time) {
	if !h.have || v != h.last {
		h.have, h.last, h.lastChange = true, v, now
	}
}

// Stale reports an error when the heartbeat has not changed for too long.
func (h *Heartbeat) Stale(now time.Time) error {
	if h.lastChange.IsZero() {
		h.lastChange = now
	}
	if d := now.Sub(h.lastChange); d > h.timeout {
		return fmt.Errorf("heartbeat unchanged for %s (limit %s): %w", d.Round(time.Millisecond), h.timeout, ErrHeartbeat)
	}
	return nil
}

// ErrHeartbeat marks a stale heartbeat.
var ErrHeartbeat = fmt.Errorf("plc heartbeat stale")

// Backoff doubles from min to max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur *= 2
	}
	if b.cur > b.Max {
		b.cur = b.Max
	}
	return b.cur
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for the next backoff or until ctx ends (false).
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Outbox delivers events in order on a channel; Emit blocks while the
// reader is behind (backpressure) but returns when ctx ends.
type Outbox struct {
	C chan plc.Event
}

// NewOutbox makes an outbox with a buffer.
func NewOutbox(n int) *Outbox { return &Outbox{C: make(chan plc.Event, n)} }

// Emit sends the events; false if ctx ended first.
func (o *Outbox) Emit(ctx context.Context, evs ...plc.Event) bool {
	for _, e := range evs {
		select {
		case o.C <- e:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// LinkState remembers whether the link was reported up, so that down/up
// events come once per transition. Down and Up are called by the driver's
// one poller goroutine; IsUp may be called from any goroutine (a write
// checks it) and sees the state as soon as the transition's event was made.
type LinkState struct {
	st atomic.Int32 // 0 never reported, 1 up, 2 down
}

const (
	linkUp   = 1
	linkDown = 2
)

// Down returns the link-down event if the link was not already down.
func (s *LinkState) Down(err error, at time.Time) []plc.Event {
	if s.st.Swap(linkDown) == linkDown {
		return nil
	}
	return []plc.Event{{Kind: plc.EventLinkDown, At: at, Err: err}}
}

// Up returns the link-up event if the link was not already up.
func (s *LinkState) Up(at time.Time) []plc.Event {
	if s.st.Swap(linkUp) == linkUp {
		return nil
	}
	return []plc.Event{{Kind: plc.EventLinkUp, At: at}}
}

// IsUp reports the last reported state (false before the first report).
func (s *LinkState) IsUp() bool { return s.st.Load() == linkUp }

// Changed reports whether v differs from the last observed value (and
// records it).
func (h *Heartbeat) Changed(v uint32) bool {
	changed := !h.have || v != h.last
	if changed {
		h.have, h.last = true, v
	}
	return changed
}

// Current holds a driver's current protocol client: nil while the link is
// down. Safe for concurrent use.
type Current[T any] struct {
	mu sync.Mutex
	c  *T
}

// Swap sets the current client (nil: the link is down) and returns the
// previous one, for the caller to close.
func (cur *Current[T]) Swap(c *T) (old *T) {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	old, cur.c = cur.c, c
	return old
}

// Get returns the current client, nil while the link is down.
func (cur *Current[T]) Get() *T {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	return cur.c
}
