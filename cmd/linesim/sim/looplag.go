package sim

import (
	"sync"
	"time"
)

// LoopLag is how late the simulated line's event loop ran its timed events
// (a unit reaching the printer, the camera, the gate; a group reaching its
// camera): the loop sleeps until the next event is due and runs it when it
// wakes, so a late wake-up — the process not scheduled, its garbage
// collector, the machine's other work — is a late camera result or PLC
// count, whatever the controller does. Real devices are hardware of their
// own; the simulator shares the controller's cores. bench line uses Late
// to tell these misses from the controller's.
type LoopLag struct {
	Events int     `json:"events"`
	Over5  int     `json:"late_over_5ms"`
	Over10 int     `json:"late_over_10ms"`
	MaxMs  float64 `json:"max_ms"`
	// Late are the events run lateWakeMs or more after they were due (the
	// first maxLateWakes).
	Late []LateWake `json:"late,omitempty"`
}

// LateWake is one event run late: when it was due, and by how much it
// was late.
type LateWake struct {
	Due time.Time `json:"due"`
	Ms  float64   `json:"ms"`
}

const (
	lateWakeMs   = 5
	maxLateWakes = 4096
)

// loopLag gathers LoopLag; the loop observes, an HTTP handler reads.
type loopLag struct {
	mu sync.Mutex
	l  LoopLag
}

// observe records an event due at due and run late after it.
func (g *loopLag) observe(due time.Time, late time.Duration) {
	ms := float64(late) / float64(time.Millisecond)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.l.Events++
	if ms > g.l.MaxMs {
		g.l.MaxMs = ms
	}
	if ms > 5 {
		g.l.Over5++
	}
	if ms > 10 {
		g.l.Over10++
	}
	if ms >= lateWakeMs && len(g.l.Late) < maxLateWakes {
		g.l.Late = append(g.l.Late, LateWake{Due: due, Ms: ms})
	}
}

func (g *loopLag) snapshot() LoopLag {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.l
	l.Late = append([]LateWake(nil), g.l.Late...)
	return l
}

// Overlap reports the largest lateness among the events due within
// [from, to] (0 if none was late).
func (l LoopLag) Overlap(from, to time.Time) float64 {
	var worst float64
	for _, w := range l.Late {
		if !w.Due.Before(from) && !w.Due.After(to) && w.Ms > worst {
			worst = w.Ms
		}
	}
	return worst
}
