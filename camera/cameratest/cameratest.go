// Package cameratest has a hand-written fake of camera.Camera for tests of
// the code that uses cameras (the line's runner): the test plays results,
// gaps and link changes. Only tests import it.
package cameratest

import (
	"sync"
	"time"

	"github.com/tracline/tracline/camera"
)

// Camera is a fake camera. Use New.
type Camera struct {
	mu     sync.Mutex
	seq    uint64
	closed bool
	events chan camera.Event
}

var _ camera.Camera = (*Camera)(nil)

// New makes a fake with an events buffer of n (default 1024).
func New(n int) *Camera {
	if n <= 0 {
		n = 1024
	}
	return &Camera{events: make(chan camera.Event, n)}
}

// Events delivers what the test plays.
func (c *Camera) Events() <-chan camera.Event { return c.events }

// Close closes Events. Safe twice.
func (c *Camera) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.events)
	}
	return nil
}

// Result plays one result; Seq is numbered by the fake, At defaults to at.
func (c *Camera) Result(at time.Time, r camera.Result) camera.Result {
	c.mu.Lock()
	c.seq++
	r.Seq = c.seq
	if r.At.IsZero() {
		r.At = at
	}
	c.mu.Unlock()
	c.events <- camera.Event{Kind: camera.EventResult, At: at, Result: r}
	return r
}

// Read plays a passing grade-A read of code for item.
func (c *Camera) Read(at time.Time, item uint32, code string) camera.Result {
	return c.Result(at, camera.Result{Item: item, Codes: []string{code}, Grade: 'A', Pass: true})
}

// NoRead plays a no-read for item.
func (c *Camera) NoRead(at time.Time, item uint32) camera.Result {
	return c.Result(at, camera.Result{Item: item})
}

// Lose plays n lost results (a gap).
func (c *Camera) Lose(at time.Time, n int) {
	c.mu.Lock()
	from := c.seq + 1
	c.seq += uint64(n)
	to := c.seq
	c.mu.Unlock()
	c.events <- camera.Event{Kind: camera.EventGap, At: at, From: from, To: to, Lost: n}
}

// Down and Up play link changes.
func (c *Camera) Down(at time.Time, err error) {
	c.events <- camera.Event{Kind: camera.EventDown, At: at, Err: err}
}

// Up: see Down.
func (c *Camera) Up(at time.Time) { c.events <- camera.Event{Kind: camera.EventUp, At: at} }
