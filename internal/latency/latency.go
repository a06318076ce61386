// Package latency is the device latency watchdog the device drivers share
// (printer/uarecord for the OPC UA coding printer, vision cameras and label
// scanners; printer/zpl for the label printer). A device that answers, but
// later than its budget, and keeps doing so, is as unusable to the line as
// one that does not answer: its units come out late, unprinted or
// unlabelled in a flood. The watchdog says so, naming the budget, so that
// the driver can report the device down and the line holds with an alarm
// naming it. Only the drivers import it.
//
// One late answer is never enough: a loaded controller (GC, another
// process on the CPU) may answer one request late now and then. A device
// is too slow when every answer for at least Config.For was over budget,
// and at least two of them; the first answer within budget ends it. Times
// are the monotonic readings of time.Now: a wall-clock step changes
// nothing.
package latency

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrTooSlow marks a device whose answers have been late for too long.
var ErrTooSlow = errors.New("device answers too slowly for the line")

// Config is one device's latency budget.
type Config struct {
	// Budget: an answer later than this after its request is late.
	Budget time.Duration `yaml:"budget"`
	// For: answers late without a break for this long (and at least two
	// of them) make the device too slow.
	For time.Duration `yaml:"for"`
}

// Validate reports what is wrong; prefix names the config path.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Budget < 0 {
		errs = append(errs, fmt.Errorf("%s.budget: %s is negative", prefix, c.Budget))
	}
	if c.For < 0 {
		errs = append(errs, fmt.Errorf("%s.for: %s is negative", prefix, c.For))
	}
	return errors.Join(errs...)
}

// WithDefaults fills what is zero from def.
func (c Config) WithDefaults(def Config) Config {
	if c.Budget == 0 {
		c.Budget = def.Budget
	}
	if c.For == 0 {
		c.For = def.For
	}
	return c
}

// Watch follows one device's answers. Safe for concurrent use; the zero
// value is not ready (New).
type Watch struct {
	cfg Config

	mu   sync.Mutex
	late int           // late answers in the current run (0: none)
	from time.Time     // the request that began the run
	span time.Duration // from the run's first request to its latest answer
	last time.Duration // the latest late answer's delay
}

// New returns a watch with cfg (its zero fields from def).
func New(cfg, def Config) *Watch {
	return &Watch{cfg: cfg.WithDefaults(def)}
}

// Config is the watch's budget, defaults filled.
func (w *Watch) Config() Config { return w.cfg }

// Observe records one exchange: its request sent at start, its answer
// received at end. The answer: nil, or an error wrapping ErrTooSlow while
// the device is too slow.
func (w *Watch) Observe(start, end time.Time) error {
	d := end.Sub(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	if d <= w.cfg.Budget {
		w.late, w.from, w.span, w.last = 0, time.Time{}, 0, 0
		return nil
	}
	if w.late == 0 {
		w.from = start
	}
	w.late++
	w.last = d
	if s := end.Sub(w.from); s > w.span {
		w.span = s
	}
	return w.errLocked()
}

// Err is the watch's verdict as of the last answer: an error wrapping
// ErrTooSlow while the device is too slow, else nil.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errLocked()
}

func (w *Watch) errLocked() error {
	if w.late < 2 || w.span < w.cfg.For {
		return nil
	}
	return fmt.Errorf("%d answers in a row later than the %s budget, for %s (the last after %s): %w",
		w.late, w.cfg.Budget, w.span.Round(10*time.Millisecond), w.last.Round(time.Millisecond), ErrTooSlow)
}

// Reset forgets the answers seen (a new connection).
func (w *Watch) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.late, w.from, w.span, w.last = 0, time.Time{}, 0, 0
}
